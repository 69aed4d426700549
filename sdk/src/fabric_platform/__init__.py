"""Typed Python client for the Fabric AI workflow platform control plane.

Start with `FabricClient` (or `AsyncFabricClient`); every error it raises is a `FabricError`.
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

__all__ = [
    "AsyncEventStream",
    "AsyncFabricClient",
    "AsyncProviderStream",
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
    "ProviderStream",
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
