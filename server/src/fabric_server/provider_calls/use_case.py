"""One provider call, the same way for every caller: admit → budget → execute or stream →
record usage.

Jobs, `ai.generate` workflow nodes and `POST /v1/providers/execute[/stream]` all go through
`ProviderCalls`: it reads the organization's credentials and checks its budget (402
`budget_exceeded` before any provider is called), runs the request on the provider routing
picks, in a client span when tracing is on, and builds and records the usage row. Callers
never open database sessions for this themselves; the use case reads in its own short
transaction, and records usage either in its own transaction or in the caller's (a job or a
node records its usage in the same commit as its outcome).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.budgets.service import BudgetService, CallEstimate
from fabric_server.db.database import Database
from fabric_server.observability.tracing import Tracing
from fabric_server.providers.base import Credentials, ProviderRequest
from fabric_server.providers.registry import (
    Execution,
    ProviderRegistry,
    StreamEvent,
    StreamOpened,
)
from fabric_server.usage.models import UsageRecord
from fabric_server.usage.recorder import insert_usage


class ProviderCalls:
    def __init__(
        self,
        db: Database,
        providers: ProviderRegistry,
        budgets: BudgetService,
        tracing: Tracing | None = None,
    ) -> None:
        self.db = db
        self.providers = providers
        self.budgets = budgets
        self.tracing = tracing or Tracing()

    # -- admit -------------------------------------------------------------------------------

    async def admit(
        self, organization_id: str, request: ProviderRequest, tier: str | None
    ) -> Credentials:
        """The organization's credentials, once its budget allows `request`.

        Raises `BudgetExceeded` (402) when the month's spend reached the limit and the call
        would cost money, `ProviderInputError` when no provider can serve the request.
        """
        async with self.db.read() as session:
            return await self.admit_in(session, organization_id, request, tier)

    async def credentials_in(
        self,
        session: AsyncSession,
        organization_id: str,
        request: ProviderRequest,
        tier: str | None,
    ) -> Credentials:
        """The organization's credentials, once routing can serve `request` with them
        (`ProviderInputError` or `ProviderNotConfigured` otherwise); the budget is not checked."""
        credentials = await self.providers.credentials(session, organization_id)
        self.providers.plan(request, tier, credentials)
        return credentials

    async def check_budget_in(
        self,
        session: AsyncSession,
        organization_id: str,
        request: ProviderRequest,
        tier: str | None,
        credentials: Credentials,
    ) -> None:
        """`BudgetExceeded` when the month's spend reached the limit and `request` would cost
        money with these credentials."""

        def estimate() -> CallEstimate | None:
            found = self.providers.estimate(request, tier, credentials)
            if not found["available"]:
                return None
            return CallEstimate(float(found["estimated_cost_usd"]), str(found["model"]))

        await self.budgets.check(session, organization_id, estimate)

    async def admit_in(
        self,
        session: AsyncSession,
        organization_id: str,
        request: ProviderRequest,
        tier: str | None,
    ) -> Credentials:
        """`admit`, inside the caller's read (a request that already holds one)."""
        credentials = await self.providers.credentials(session, organization_id)
        await self.check_budget_in(session, organization_id, request, tier, credentials)
        return credentials

    # -- execute or stream -------------------------------------------------------------------

    async def run(
        self, request: ProviderRequest, tier: str | None, credentials: Credentials
    ) -> Execution:
        """Run an admitted request on the provider routing picks (falling back as routing
        allows), in a client span."""
        span = self._span("execute", request, tier)
        try:
            execution = await self.providers.execute(request, tier, credentials)
        except BaseException as exc:
            _failed(span, exc)
            raise
        else:
            _describe(span, execution)
            return execution
        finally:
            span.end()

    async def execute(
        self, organization_id: str, request: ProviderRequest, tier: str | None
    ) -> Execution:
        """Admit, then run."""
        return await self.run(request, tier, await self.admit(organization_id, request, tier))

    async def stream(
        self, request: ProviderRequest, tier: str | None, credentials: Credentials
    ) -> AsyncIterator[StreamEvent]:
        """An admitted request, as it is produced: `StreamOpened`, text deltas, then the
        `Execution` (see `ProviderRegistry.stream`), in one client span."""
        span = self._span("stream", request, tier)
        events = self.providers.stream(request, tier, credentials)
        try:
            async for event in events:
                if isinstance(event, Execution):
                    _describe(span, event)
                yield event
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            await events.aclose()  # type: ignore[attr-defined]
            span.end()

    def partial(self, request: ProviderRequest, opened: StreamOpened, text: str) -> Execution:
        """What an interrupted stream used: the text sent so far, tokens approximated."""
        return self.providers.partial(request, opened, text)

    # -- record usage ------------------------------------------------------------------------

    @staticmethod
    def usage(
        execution: Execution,
        *,
        organization_id: str,
        principal_id: str | None = None,
        api_key_id: str | None = None,
        job_id: str | None = None,
        run_id: str | None = None,
        node_key: str | None = None,
    ) -> UsageRecord:
        """The usage row of an execution, for whoever it is accounted to."""
        result = execution.result
        return UsageRecord(
            organization_id=organization_id,
            principal_id=principal_id,
            api_key_id=api_key_id,
            job_id=job_id,
            run_id=run_id,
            node_key=node_key,
            provider_id=result.provider_id,
            model=result.model,
            modality=execution.modality,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=result.cost_usd,
            latency_ms=execution.latency_ms,
        )

    async def record_in(self, session: AsyncSession, records: Sequence[UsageRecord]) -> None:
        """Add usage rows in the caller's transaction, with the budget's running spend and
        threshold alerts. Call it before the transaction records any other event (the
        budget row's lock comes before the event-order lock)."""
        await self.budgets.record_usage(session, records)

    @staticmethod
    def record_unpaid_in(conn: Connection, record: UsageRecord) -> None:
        """Add the usage row of a free call inside a group-commit unit (no budget to
        update: its spend does not move)."""
        insert_usage(conn, record)

    async def record(
        self, execution: Execution, organization_id: str, principal: Principal
    ) -> None:
        """A direct call's usage row (and any budget alert), in a transaction of its own."""
        record = self.usage(
            execution,
            organization_id=organization_id,
            principal_id=principal.id,
            api_key_id=principal.api_key_id,
        )
        async with self.db.write() as session:
            await self.record_in(session, [record])

    # -- tracing -----------------------------------------------------------------------------

    def _span(self, verb: str, request: ProviderRequest, tier: str | None) -> Span:
        attributes: dict[str, str] = {"fabric.provider.modality": request.modality}
        if request.model:
            attributes["fabric.provider.requested_model"] = request.model
        if tier:
            attributes["fabric.provider.tier"] = tier
        return self.tracing.tracer.start_span(
            f"provider.{verb}", kind=SpanKind.CLIENT, attributes=attributes
        )


def _describe(span: Span, execution: Execution) -> None:
    result = execution.result
    span.set_attributes(
        {
            "fabric.provider.id": result.provider_id,
            "fabric.provider.model": result.model,
            "fabric.provider.input_tokens": result.input_tokens,
            "fabric.provider.output_tokens": result.output_tokens,
            "fabric.provider.cost_usd": result.cost_usd,
            "fabric.provider.failed_attempts": len(execution.failed_attempts),
        }
    )


def _failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
