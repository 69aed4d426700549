"""The public clients, composed from the per-domain method mixins.

Each domain module (`_accounts`, `_jobs`, `_workflows`, `_schedules`, `_events`, `_tenancy`,
`_access`, `_providers`, `_usage`, `_audit`, `_budgets`, `_galleries`, `_webhooks`) provides a
sync mixin on `SyncClientCore` and an async twin on `AsyncClientCore`; adding a domain means
writing that module and listing its mixins here.
"""

from __future__ import annotations

from typing import cast

from ._access import AccessMethods, AsyncAccessMethods
from ._accounts import AccountsMethods, AsyncAccountsMethods
from ._audit import AsyncAuditMethods, AuditMethods
from ._budgets import AsyncBudgetsMethods, BudgetsMethods
from ._code_workers import AsyncCodeWorkersMethods, CodeWorkersMethods
from ._events import AsyncEventsMethods, EventsMethods
from ._galleries import AsyncGalleriesMethods, GalleriesMethods
from ._jobs import AsyncJobsMethods, JobsMethods
from ._limits import AsyncLimitsMethods, LimitsMethods
from ._providers import AsyncProvidersMethods, ProvidersMethods
from ._schedules import AsyncSchedulesMethods, SchedulesMethods
from ._tenancy import AsyncTenancyMethods, TenancyMethods
from ._usage import AsyncUsageMethods, UsageMethods
from ._webhooks import AsyncWebhooksMethods, WebhooksMethods
from ._workflows import AsyncWorkflowsMethods, WorkflowsMethods
from .types import HealthStatus

__all__ = ["AsyncFabricClient", "FabricClient"]


class FabricClient(
    AccountsMethods,
    JobsMethods,
    WorkflowsMethods,
    EventsMethods,
    TenancyMethods,
    AccessMethods,
    ProvidersMethods,
    UsageMethods,
    AuditMethods,
    BudgetsMethods,
    GalleriesMethods,
    WebhooksMethods,
    SchedulesMethods,
    CodeWorkersMethods,
    LimitsMethods,
):
    """Synchronous client for the Fabric control-plane API.

    ``FabricClient(base_url=None, api_key=None, principal_id=None, organization_id=None,
    timeout=30.0, *, max_retries=2, http_client=None, transport=None)``

    Each setting is resolved once, here: the argument, else its environment variable
    (``FABRIC_BASE_URL``, ``FABRIC_API_KEY``, ``FABRIC_ORGANIZATION_ID``), else the default
    (``http://localhost:3001``). ``organization_id`` is used by calls that take none; without
    one, a client with no API key uses the default organization
    ``00000000-0000-0000-0000-000000000010``, and a client with an API key lets the server use
    the key's organization (learning it, once, for routes that name it in their path).
    Failed calls are retried up to ``max_retries`` times when that is safe (reads, and writes
    carrying an idempotency key).
    ``http_client`` (left open by `close`) or ``transport`` replace the HTTP layer.
    After `login` (or `signup`) calls are signed with the session's access token instead of
    the API key, and the token is refreshed on its own before it expires or when rejected.
    Every error raised is a `FabricError`. Use it as a context manager or call `close()`.
    """

    def health_check(self) -> HealthStatus:
        """``GET /v1/health``: ``{"status": "ok", "version": "<server version>"}``."""
        return cast(HealthStatus, self._request("GET", "/v1/health"))


class AsyncFabricClient(
    AsyncAccountsMethods,
    AsyncJobsMethods,
    AsyncWorkflowsMethods,
    AsyncEventsMethods,
    AsyncTenancyMethods,
    AsyncAccessMethods,
    AsyncProvidersMethods,
    AsyncUsageMethods,
    AsyncAuditMethods,
    AsyncBudgetsMethods,
    AsyncGalleriesMethods,
    AsyncWebhooksMethods,
    AsyncSchedulesMethods,
    AsyncCodeWorkersMethods,
    AsyncLimitsMethods,
):
    """Asynchronous twin of `FabricClient`: same constructor, same methods, awaited.

    Iterators (the ``iter_*`` methods, the event streams) are consumed with ``async for``.
    Use it as an async context manager, or ``await client.close()`` when done.
    """

    async def health_check(self) -> HealthStatus:
        """``GET /v1/health``: ``{"status": "ok", "version": "<server version>"}``."""
        return cast(HealthStatus, await self._request("GET", "/v1/health"))
