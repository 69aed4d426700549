"""The caller's trace context, forwarded on every request when OpenTelemetry is in use.

The SDK does not depend on OpenTelemetry. When the ``opentelemetry-api`` package is
installed and a span is current where an SDK call is made, the request carries that span's
W3C ``traceparent`` (and ``tracestate``/``baggage`` when set), through whatever propagators
the application configured; the server's spans for the call then join the caller's trace.
Without the package, or without a current span, nothing is added.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

_inject: Optional[Callable[[Dict[str, str]], Any]] = None
_looked = False


def trace_headers() -> Dict[str, str]:
    """The current trace context as HTTP headers (empty when there is none)."""
    global _inject, _looked
    if not _looked:
        _looked = True
        try:
            from opentelemetry.propagate import inject
        except ImportError:
            _inject = None
        else:
            _inject = inject
    carrier: Dict[str, str] = {}
    if _inject is not None:
        _inject(carrier)
    return carrier
