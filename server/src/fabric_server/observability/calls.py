"""Recording provider calls and webhook delivery attempts (in-memory counters only)."""

from __future__ import annotations

from fabric_server.observability import metrics as m
from fabric_server.observability.labels import attempt_label

OK = "ok"


def provider_call(
    provider_id: str,
    model: str,
    outcome: str,
    seconds: float,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost_usd: float = 0.0,
) -> None:
    """One call to one provider: `outcome` is `ok`, `interrupted` or the error's code."""
    provider, model = m.PROVIDERS(provider_id), m.MODELS(model)
    m.PROVIDER_CALLS.labels(provider, model, outcome).inc()
    m.PROVIDER_LATENCY.labels(provider, model).observe(max(0.0, seconds))
    if input_tokens > 0:
        m.PROVIDER_TOKENS.labels(provider, model, "input").inc(input_tokens)
    if output_tokens > 0:
        m.PROVIDER_TOKENS.labels(provider, model, "output").inc(output_tokens)
    if cost_usd > 0:
        m.PROVIDER_COST.labels(provider, model).inc(cost_usd)


def webhook_attempt(outcome: str, attempt: int, seconds: float) -> None:
    """One delivery attempt ended: `succeeded`, `retrying` (another attempt is scheduled) or
    `failed` (the delivery was given up)."""
    m.WEBHOOK_ATTEMPTS.labels(outcome, attempt_label(attempt)).inc()
    m.WEBHOOK_LATENCY.labels(outcome).observe(max(0.0, seconds))
