"""The global event stream: every domain event visible to the caller, as it happens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from ._base import QueryValue, query
from ._core import AsyncClientCore, SyncClientCore
from ._streaming import AsyncEventStream, EventStream

EVENTS_PATH = "/v1/events/stream"


def _stream_params(
    include_internal: bool, kinds: Optional[Sequence[str]], organization_id: Optional[str]
) -> dict[str, QueryValue]:
    if isinstance(kinds, str):  # a lone kind, not a sequence of one-letter kinds
        kinds = [kinds]
    return query(
        include_internal=True if include_internal else None,
        # Lists travel as one comma-joined parameter (wire-spec §2).
        kinds=",".join(kinds) if kinds else None,
        organization_id=organization_id,
    )


class EventsMethods(SyncClientCore):
    def stream_events(
        self,
        include_internal: bool = False,
        *,
        kinds: Optional[Sequence[str]] = None,
        organization_id: Optional[str] = None,
    ) -> EventStream:
        """Iterate over the live domain events visible to the caller; it never ends by itself.

        ``kinds`` keeps only those event kinds (e.g. ``["workflow.run.completed"]``) and
        ``organization_id`` one organization's events. A dropped connection is resumed where it
        stopped (``Last-Event-ID``). Leave the loop with ``break``, or call ``close()``.
        """
        return self._stream(EVENTS_PATH, _stream_params(include_internal, kinds, organization_id))


class AsyncEventsMethods(AsyncClientCore):
    def stream_events(
        self,
        include_internal: bool = False,
        *,
        kinds: Optional[Sequence[str]] = None,
        organization_id: Optional[str] = None,
    ) -> AsyncEventStream:
        """``async for`` over the live domain events visible to the caller; it never ends by
        itself (see `FabricClient.stream_events`).
        """
        return self._stream(EVENTS_PATH, _stream_params(include_internal, kinds, organization_id))
