"""``fabric schedules``, ``webhooks``, ``usage`` and ``audit``: organization-wide views."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import click

from .app import OUTPUT_OPTION, App, fmt, parse_json, pass_app
from .output import emit, table
from .workflows_cmds import find_by_name

BAR_WIDTH = 30


def org_id(app: App) -> str:
    """The organization to act on: the configured one, else the caller's own (or only)."""
    if app.settings.organization_id:
        return app.settings.organization_id
    found = app.client().get_me().get("organization_id")
    if not found:
        orgs = app.client().list_organizations()
        found = orgs[0]["id"] if len(orgs) == 1 else None
    if not found:
        raise click.UsageError("no organization: pass --org or run `fabric orgs use ORG`")
    return found


def workflow_id(app: App, name: str) -> str:
    found = find_by_name(app.client(), name)
    return str(found["id"]) if found else name


@click.group()
def schedules() -> None:
    """Cron schedules of workflows."""


@schedules.command("list")
@click.argument("workflow")
@OUTPUT_OPTION
@pass_app
def schedules_list(app: App, workflow: str, output: Optional[str]) -> None:
    """List the schedules of WORKFLOW (a name or id)."""
    found = app.client().list_schedules(workflow_id(app, workflow))
    columns = ["id", "cron_expression", "timezone", "enabled", "next_run_at"]
    emit([dict(s) for s in found], fmt(app, output), columns)


@schedules.command(
    "create", epilog="\b\nExample:\n  fabric schedules create my-pipeline '0 9 * * 1-5'"
)
@click.argument("workflow")
@click.argument("cron")
@click.option("--timezone", default=None)
@click.option("--context", "context_json", help="Each run's starting context (JSON object).")
@OUTPUT_OPTION
@pass_app
def schedules_create(
    app: App,
    workflow: str,
    cron: str,
    timezone: Optional[str],
    context_json: Optional[str],
    output: Optional[str],
) -> None:
    """Run WORKFLOW on the cron expression CRON."""
    extra: Dict[str, Any] = {}
    if timezone:
        extra["timezone"] = timezone
    if context_json:
        extra["input_context"] = parse_json(context_json, "--context")
    created = app.client().create_schedule(workflow_id(app, workflow), cron, **extra)
    emit(dict(created), fmt(app, output))


@schedules.command("trigger")
@click.argument("schedule_id")
@OUTPUT_OPTION
@pass_app
def schedules_trigger(app: App, schedule_id: str, output: Optional[str]) -> None:
    """Fire a schedule now."""
    emit(dict(app.client().trigger_schedule(schedule_id)), fmt(app, output))


@schedules.command("history")
@click.argument("schedule_id")
@click.option("--limit", type=int, default=20, show_default=True)
@OUTPUT_OPTION
@pass_app
def schedules_history(app: App, schedule_id: str, limit: int, output: Optional[str]) -> None:
    """A schedule's firings, newest first."""
    entries = app.client().schedule_history(schedule_id, limit=limit)
    emit([dict(e) for e in entries], fmt(app, output))


@click.group()
def webhooks() -> None:
    """Webhook subscriptions of your organization."""


@webhooks.command(
    "create", epilog="\b\nExample:\n  fabric webhooks create https://x.io/hook -e job.completed"
)
@click.argument("url")
@click.option("--event", "-e", "events", multiple=True, help="Event kind to deliver.")
@OUTPUT_OPTION
@pass_app
def webhooks_create(app: App, url: str, events: Tuple[str, ...], output: Optional[str]) -> None:
    """Subscribe URL to events; the signing secret is shown once."""
    created = app.client().create_webhook(org_id(app), url, list(events) or None)
    emit(dict(created), fmt(app, output))


@webhooks.command("list")
@OUTPUT_OPTION
@pass_app
def webhooks_list(app: App, output: Optional[str]) -> None:
    """List webhooks."""
    found = app.client().list_webhooks(org_id(app))
    emit([dict(w) for w in found], fmt(app, output), ["id", "url", "events", "active"])


@webhooks.command("deliveries")
@click.argument("webhook_id")
@OUTPUT_OPTION
@pass_app
def webhooks_deliveries(app: App, webhook_id: str, output: Optional[str]) -> None:
    """A webhook's recent delivery attempts, newest first."""
    page: Any = app.client().list_webhook_deliveries(webhook_id)
    items = page["items"] if isinstance(page, dict) else page
    columns = ["delivery_id", "event_kind", "attempt", "status", "status_code", "created_at"]
    emit(items, fmt(app, output), columns)


@webhooks.command(
    "redeliver",
    epilog="\b\nExample:\n  fabric webhooks redeliver WEBHOOK_ID DELIVERY_ID",
)
@click.argument("webhook_id")
@click.argument("delivery_id")
@OUTPUT_OPTION
@pass_app
def webhooks_redeliver(app: App, webhook_id: str, delivery_id: str, output: Optional[str]) -> None:
    """Send a finished delivery again (same body and delivery id, one attempt)."""
    attempt: Any = app.client().redeliver_webhook_delivery(webhook_id, delivery_id)
    emit(dict(attempt), fmt(app, output))


def chart(rows: List[Dict[str, Any]], label: str, value: str) -> str:
    """A horizontal bar per row, scaled to the largest value."""
    top = max((float(r.get(value) or 0) for r in rows), default=0.0) or 1.0
    width = max((len(str(r.get(label))) for r in rows), default=0)
    lines = []
    for row in rows:
        amount = float(row.get(value) or 0)
        bar = "#" * round(BAR_WIDTH * amount / top)
        lines.append(f"{str(row.get(label)).ljust(width)}  {bar} {row.get(value)}")
    return "\n".join(lines)


@click.command(epilog="\b\nExamples:\n  fabric usage\n  fabric usage --by provider -o json")
@click.option("--by", type=click.Choice(["day", "provider", "model"]), default="day")
@OUTPUT_OPTION
@pass_app
def usage(app: App, by: str, output: Optional[str]) -> None:
    """This month's usage, with a small chart."""
    client = app.client()
    if by == "day":
        rows = [dict(d) for d in client.get_org_usage_daily(org_id(app))]
        text = chart(rows, "date", "executions")
    else:
        totals: Any = client.get_org_usage(org_id(app))
        key = "provider_id" if by == "provider" else "model"
        merged: Dict[str, Dict[str, Any]] = {}
        for part in totals.get("by_provider") or []:
            row = merged.setdefault(str(part.get(key)), {by: part.get(key), "executions": 0})
            row["executions"] += part.get("executions") or 0
            row["cost_usd"] = row.get("cost_usd", 0.0) + (part.get("cost_usd") or 0.0)
        rows = list(merged.values())
        text = chart(rows, by, "executions") if rows else "No usage yet."
    emit(rows, fmt(app, output), text=text)


@click.command()
@click.option("--action", help="Only entries of this action.")
@click.option("--limit", type=int, default=20, show_default=True)
@OUTPUT_OPTION
@pass_app
def audit(app: App, action: Optional[str], limit: int, output: Optional[str]) -> None:
    """The changes you made, newest first."""
    page: Any = app.client().get_audit_logs(limit=limit, action=action)
    items = page["items"]
    columns = ["created_at", "action", "resource_type", "resource_id"]
    emit(items, fmt(app, output), text=table(items, columns))


def register(group: click.Group) -> None:
    for command in (schedules, webhooks, usage, audit):
        group.add_command(command)
