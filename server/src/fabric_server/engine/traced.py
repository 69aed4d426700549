"""Running a work item in its own log context and, with tracing on, its own span.

`Services.new_worker` wraps every handler in a `TracedHandler`, so the worker itself needs
no code for either: the item's ids go on every log record written while it runs, and its
span continues the trace of whatever created it (the `traceparent` in its payload).
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.engine.models import WorkItem
from fabric_server.engine.worker import Handler
from fabric_server.observability.logs import bind_work
from fabric_server.observability.tracing import Tracing, context_of


class TracedHandler:
    def __init__(self, handler: Handler, tracing: Tracing) -> None:
        self.handler = handler
        self.tracing = tracing

    async def run(self, item: WorkItem) -> None:
        fields = bind_work(item)
        if not self.tracing.enabled:
            await self.handler.run(item)
            return
        attributes = {f"fabric.{name}": value for name, value in fields.items()}
        attributes["fabric.work.attempt"] = item.attempts
        with self.tracing.tracer.start_as_current_span(
            f"work {item.kind}",
            context=context_of(item.payload or {}),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            await self.handler.run(item)

    async def give_up(self, item: WorkItem, error: str) -> None:
        bind_work(item)
        await self.handler.give_up(item, error)

    async def on_release(self, session: AsyncSession, item: WorkItem) -> None:
        await self.handler.on_release(session, item)
