"""Dev mode's sample gallery: a public `portrait` gallery with tagged placeholder items.

The images are tiny SVG data URLs that say what they are (a coloured card with a label), so
nothing is fetched from anywhere and nobody mistakes them for real reference photos.
"""

from __future__ import annotations

import base64

from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.galleries import repository
from fabric_server.galleries.models import Gallery, GalleryItem

SAMPLE_GALLERY_ID = "00000000-0000-0000-0000-0000000000a1"
_SAMPLES = (
    (
        "00000000-0000-0000-0000-0000000000b1",
        "Studio, professional",
        "#33658a",
        ("professional", "studio"),
    ),
    (
        "00000000-0000-0000-0000-0000000000b2",
        "Outdoor, professional",
        "#2f4858",
        ("outdoor", "professional"),
    ),
    ("00000000-0000-0000-0000-0000000000b3", "Studio, casual", "#f6ae2d", ("casual", "studio")),
    ("00000000-0000-0000-0000-0000000000b4", "Outdoor, casual", "#f26419", ("casual", "outdoor")),
)


def placeholder(label: str, color: str) -> str:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="320">'
        f'<rect width="256" height="320" fill="{color}"/>'
        '<text x="128" y="150" font-size="18" text-anchor="middle" fill="#fff">'
        "Sample portrait</text>"
        f'<text x="128" y="180" font-size="14" text-anchor="middle" fill="#fff">{label}</text>'
        "</svg>"
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


async def seed_sample_galleries(session: AsyncSession) -> None:
    """Create the sample gallery if it is missing (run at every dev start, so a deleted
    sample comes back at the next one)."""
    if await repository.get(session, SAMPLE_GALLERY_ID) is not None:
        return
    await repository.add(
        session,
        Gallery(
            id=SAMPLE_GALLERY_ID,
            organization_id=None,
            kind="portrait",
            name="Sample portraits",
            description="Placeholder portraits seeded in dev mode to try galleries with.",
            metadata_={"sample": True},
        ),
    )
    for item_id, label, color, tags in _SAMPLES:
        item = GalleryItem(
            id=item_id,
            gallery_id=SAMPLE_GALLERY_ID,
            url=placeholder(label, color),
            title=f"Sample portrait: {label.lower()}",
            metadata_={"sample": True, "note": "placeholder image, not a photo"},
        )
        await repository.add_item(session, item, tags)
