"""Opaque keyset cursors: the cost of a page never grows with the table."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from fabric_server.errors import Unprocessable


class HasId(Protocol):
    @property
    def id(self) -> str: ...


Row = TypeVar("Row", bound=HasId)


class InvalidCursor(Unprocessable):
    """A cursor of the documented form that this server did not hand out (422)."""

    code = "invalid_cursor"


MAX_LIMIT = 200
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after_id: str | None


def encode_cursor(last_id: str) -> str:
    raw = json.dumps({"after": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = value["after"]
        if not isinstance(after, str) or len(after) > 64:
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(
            "The cursor is not valid; pass back the `next_cursor` of a previous page.",
            details={"cursor": cursor[:100]},
        ) from exc


def page_request(limit: int, cursor: str | None) -> PageRequest:
    return PageRequest(limit=limit, after_id=decode_cursor(cursor))


def split_page(rows: Sequence[Row], limit: int) -> tuple[list[Row], str | None]:
    """Rows fetched with `limit + 1`: the page, and the id to continue after (None at the end)."""
    page = list(rows[:limit])
    return page, (page[-1].id if len(rows) > limit and page else None)
