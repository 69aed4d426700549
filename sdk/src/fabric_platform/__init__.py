"""Typed Python client for the Fabric AI workflow platform control plane.

Start with `FabricClient` (or `AsyncFabricClient`); every error it raises is a `FabricError`.
Run your own functions as workflow steps with `Worker` (or `AsyncWorker`).
"""

from __future__ import annotations

from . import types, webhooks
from ._client import AsyncFabricClient, FabricClient
from ._errors import (
    FabricAPIError,
    FabricAuthError,
    FabricBudgetExceededError,
    FabricClientClosedError,
    FabricConflictError,
    FabricConnectionError,
    FabricError,
    FabricForbiddenError,
    FabricNotFoundError,
    FabricRateLimitError,
    FabricServerError,
    FabricSignatureError,
    FabricTimeoutError,
    FabricValidationError,
    FabricWaitTimeout,
)
from ._provider_stream import AsyncProviderStream, ProviderStream
from ._streaming import AsyncEventStream, EventStream
from ._version import __version__
from ._worker import AsyncWorker
from ._worker_step import OperationError, Step
from ._worker_sync import Worker

__all__ = [
    "AsyncEventStream",
    "AsyncFabricClient",
    "AsyncProviderStream",
    "AsyncWorker",
    "EventStream",
    "FabricAPIError",
    "FabricAuthError",
    "FabricBudgetExceededError",
    "FabricClient",
    "FabricClientClosedError",
    "FabricConflictError",
    "FabricConnectionError",
    "FabricError",
    "FabricForbiddenError",
    "FabricNotFoundError",
    "FabricRateLimitError",
    "FabricServerError",
    "FabricSignatureError",
    "FabricTimeoutError",
    "FabricValidationError",
    "FabricWaitTimeout",
    "OperationError",
    "ProviderStream",
    "Step",
    "Worker",
    "__version__",
    "types",
    "webhooks",
]

# Show the public classes under the package's name (tracebacks, reprs), as httpx does.
for _name in __all__:
    _member = globals()[_name]
    if isinstance(_member, type):
        _member.__module__ = __name__
del _name, _member
