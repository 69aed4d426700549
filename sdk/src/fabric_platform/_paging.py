"""Walking paged lists: the page shapes the server answers, and the loops over them.

Two shapes exist. Most lists answer ``{"items": [...], "next_cursor": str | None}`` and take the
cursor back as ``cursor``. A few answer a plain array and continue after the ``id`` of the last
entry seen (schedule history, gallery items); such a list ends with a page shorter than asked.
The loops do no I/O themselves: they call ``fetch(cursor)`` for each page, lazily.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Callable, Optional

FetchPage = Callable[[Optional[str]], Any]
AsyncFetchPage = Callable[[Optional[str]], Awaitable[Any]]


def page_items(page: Any) -> list[Any]:
    """The items of one list page, whether the server sent ``{"items": [...]}`` or an array."""
    if isinstance(page, list):
        return page
    if isinstance(page, dict) and isinstance(page.get("items"), list):
        return list(page["items"])
    return []


def next_cursor(page: Any, previous: Optional[str]) -> Optional[str]:
    """The cursor of the page after ``page``, or None when ``page`` was the last one."""
    cursor = page.get("next_cursor") if isinstance(page, dict) else None
    # A cursor that does not move would page forever; treat it as the end.
    if not isinstance(cursor, str) or not cursor or cursor == previous:
        return None
    return cursor


def next_after(page: Any, page_size: int, previous: Optional[str]) -> Optional[str]:
    """For lists continued after an id: the last entry's id, or None when ``page`` was the
    last one (shorter than ``page_size``, or not moving on)."""
    items = page_items(page)
    if len(items) < page_size:
        return None
    last = items[-1]
    after = last.get("id") if isinstance(last, dict) else None
    if not isinstance(after, str) or not after or after == previous:
        return None
    return after


def iterate_pages(fetch: FetchPage, page_size: Optional[int] = None) -> Iterator[Any]:
    """Every item of every page, fetching each page only when iteration reaches it.

    With ``page_size`` the list is one continued after an id (see the module docstring);
    without it, one that answers ``next_cursor``.
    """
    cursor: Optional[str] = None
    while True:
        page = fetch(cursor)
        yield from page_items(page)
        if page_size is None:
            cursor = next_cursor(page, cursor)
        else:
            cursor = next_after(page, page_size, cursor)
        if cursor is None:
            return


async def aiterate_pages(
    fetch: AsyncFetchPage, page_size: Optional[int] = None
) -> AsyncIterator[Any]:
    """`iterate_pages` for the async client (``async for``)."""
    cursor: Optional[str] = None
    while True:
        page = await fetch(cursor)
        for item in page_items(page):
            yield item
        if page_size is None:
            cursor = next_cursor(page, cursor)
        else:
            cursor = next_after(page, page_size, cursor)
        if cursor is None:
            return
