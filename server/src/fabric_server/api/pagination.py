"""Paging in the HTTP API: the cursor query parameter (the cursors themselves are
`fabric_server.paging`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from fabric_server.paging import CURSOR_PATTERN

# Cursors are opaque, URL-safe tokens: pass back the `next_cursor` of a previous page.
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=500,
        pattern=CURSOR_PATTERN,
        description="The `next_cursor` of the previous page (URL-safe base64 text)",
    ),
]
