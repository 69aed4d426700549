"""The SDK against the server's route table: no route forgotten, no field out of reach.

The route table is the server's own OpenAPI document, built in-process by `create_app`. Every
`/v1` route has an SDK method or is listed, with the reason, as not covered. For each covered
route the SDK method is called once per field the route accepts (query or body), with that
field set, and the request it sends must carry the field; deliberate omissions are listed with
their reason. Paged lists must have an ``iter_*`` helper taking the same filters.

The requests are recorded by an `httpx.MockTransport` answering a generic success: what is
checked is the shape of what the SDK sends, against the contract the real server declares.
The end-to-end tests next to this file run the same methods against a live server.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest

from fabric_platform import (
    AsyncFabricClient,
    EventStream,
    FabricClient,
    FabricError,
    ProviderStream,
)
from fabric_server.app import create_app
from fabric_server.testing import fast_settings

EMAIL = "someone@example.com"
TEXT_JOB = {"modality": "text", "input": {"prompt": "p"}}
# Parameters that page a list rather than filter it; an iterator replaces them by page_size.
PAGING_PARAMETERS = frozenset({"limit", "cursor", "after", "offset"})
# A list that takes one of these is paged (cursor, after-an-id, or offset style).
PAGE_POSITION = frozenset({"cursor", "after", "offset"})


@dataclass(frozen=True)
class Sdk:
    """How the SDK covers one route.

    ``args`` fill the route's path; ``kwargs`` make a valid base call (a field the test sets
    replaces its entry). ``renamed`` maps a wire field to the SDK parameter carrying it;
    ``omitted`` lists wire fields the method leaves out on purpose, with the reason.
    """

    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    renamed: Mapping[str, str] = field(default_factory=dict)
    omitted: Mapping[str, str] = field(default_factory=dict)
    iterator: Optional[str] = None


ORG = {"org_id": "org-1"}
BY_ORG_ID = {"organization_id": "org_id"}

COVERED: dict[tuple[str, str], Sdk] = {
    ("GET", "/v1/health"): Sdk("health_check"),
    # --- code workers (the operator's view)
    ("GET", "/v1/workers"): Sdk("list_workers", iterator="iter_workers"),
    ("GET", "/v1/workers/{worker_id}"): Sdk("get_worker", args=("w-1",)),
    ("DELETE", "/v1/workers/{worker_id}"): Sdk("deregister_worker", args=("w-1",)),
    # --- accounts
    ("POST", "/v1/auth/signup"): Sdk("signup", kwargs={"email": EMAIL, "password": "pw"}),
    ("POST", "/v1/auth/login"): Sdk("login", kwargs={"email": EMAIL, "password": "pw"}),
    ("POST", "/v1/auth/token/refresh"): Sdk("refresh_token", kwargs={"refresh_token": "r"}),
    ("POST", "/v1/auth/logout"): Sdk("logout"),
    ("POST", "/v1/auth/logout-all"): Sdk("logout_all"),
    ("POST", "/v1/auth/change-password"): Sdk(
        "change_password", kwargs={"current_password": "a", "new_password": "b"}
    ),
    ("POST", "/v1/auth/magic-link"): Sdk("magic_link", kwargs={"email": EMAIL}),
    ("POST", "/v1/auth/magic-link/verify"): Sdk("verify_magic_link", kwargs={"token": "t"}),
    ("POST", "/v1/auth/forgot-password"): Sdk("forgot_password", kwargs={"email": EMAIL}),
    ("POST", "/v1/auth/reset-password"): Sdk(
        "reset_password",
        kwargs={"recovery_token": "t", "new_password": "n"},
        renamed={"access_token": "recovery_token"},
        omitted={"token": "the other spelling of the recovery token; the SDK sends access_token"},
    ),
    ("POST", "/v1/auth/verify"): Sdk("verify_email", kwargs={"token": "t"}),
    ("POST", "/v1/auth/resend-verification"): Sdk("resend_verification", kwargs={"email": EMAIL}),
    # --- jobs and events
    ("POST", "/v1/jobs"): Sdk("create_job", kwargs=TEXT_JOB),
    ("GET", "/v1/jobs"): Sdk("list_jobs", iterator="iter_jobs"),
    ("POST", "/v1/jobs/batch"): Sdk("create_jobs", kwargs={"jobs": [TEXT_JOB]}),
    ("GET", "/v1/jobs/{job_id}"): Sdk(
        "get_job", ("job-1",), omitted={"wait": "wait_for_job holds its reads (a long wait)"}
    ),
    ("GET", "/v1/jobs/{job_id}/usage"): Sdk("get_job_usage", ("job-1",)),
    ("GET", "/v1/jobs/{job_id}/events"): Sdk("stream_job_events", ("job-1",)),
    ("GET", "/v1/events/stream"): Sdk("stream_events"),
    # --- audit
    ("GET", "/v1/organizations/{org_id}/audit-logs"): Sdk(
        "get_org_audit_logs", ("org-1",), iterator="iter_org_audit_logs"
    ),
    ("GET", "/v1/audit-logs"): Sdk("get_audit_logs", iterator="iter_audit_logs"),
    # --- workflows
    ("POST", "/v1/workflow-definitions"): Sdk(
        "upsert_workflow", kwargs={"name": "wf", "nodes": []}
    ),
    ("GET", "/v1/workflow-definitions"): Sdk("list_workflows"),
    ("GET", "/v1/workflow-definitions/{definition_id}"): Sdk("get_workflow", ("wf-1",)),
    ("POST", "/v1/workflow-runs"): Sdk(
        "run_workflow",
        kwargs={"workflow_id": "wf-1"},
        renamed={"workflow_definition_id": "workflow_id"},
    ),
    # run_workflow starts the run it created, in the same call.
    ("POST", "/v1/workflow-runs/{run_id}/start"): Sdk(
        "run_workflow", kwargs={"workflow_id": "wf-1"}
    ),
    ("GET", "/v1/workflow-runs"): Sdk("list_runs", iterator="iter_runs"),
    ("POST", "/v1/workflow-runs/bulk-cancel"): Sdk("bulk_cancel_runs", kwargs={"run_ids": []}),
    ("GET", "/v1/workflow-runs/{run_id}"): Sdk(
        "get_run", ("run-1",), omitted={"wait": "wait_for_run holds its reads (a long wait)"}
    ),
    ("POST", "/v1/workflow-runs/{run_id}/cancel"): Sdk("cancel_run", ("run-1",)),
    ("POST", "/v1/workflow-runs/{run_id}/pause"): Sdk("pause_run", ("run-1",)),
    ("POST", "/v1/workflow-runs/{run_id}/resume"): Sdk("resume_run", ("run-1",)),
    ("GET", "/v1/workflow-runs/{run_id}/log"): Sdk("run_log", ("run-1",)),
    ("GET", "/v1/workflow-runs/{run_id}/children"): Sdk("list_children", ("run-1",)),
    ("POST", "/v1/workflow-runs/{run_id}/nodes/{node_key}/resume"): Sdk(
        "resume_node", ("run-1", "approve")
    ),
    ("GET", "/v1/workflow-runs/{run_id}/events"): Sdk("stream_run_events", ("run-1",)),
    # --- schedules
    ("POST", "/v1/workflow-definitions/{definition_id}/schedules"): Sdk(
        "create_schedule",
        ("wf-1",),
        kwargs={"cron_expression": "0 9 * * *"},
        omitted={"workflow_definition_id": "the SDK gives the workflow in the path"},
    ),
    ("GET", "/v1/workflow-definitions/{definition_id}/schedules"): Sdk("list_schedules", ("wf-1",)),
    ("GET", "/v1/schedules/{schedule_id}"): Sdk("get_schedule", ("s-1",)),
    ("PATCH", "/v1/schedules/{schedule_id}"): Sdk("update_schedule", ("s-1",)),
    ("DELETE", "/v1/schedules/{schedule_id}"): Sdk("delete_schedule", ("s-1",)),
    ("POST", "/v1/schedules/{schedule_id}/trigger"): Sdk("trigger_schedule", ("s-1",)),
    ("GET", "/v1/schedules/{schedule_id}/history"): Sdk(
        "schedule_history", ("s-1",), iterator="iter_schedule_history"
    ),
    # --- providers, usage, budgets
    ("GET", "/v1/providers"): Sdk("providers"),
    ("POST", "/v1/providers/execute"): Sdk("execute_provider", kwargs=TEXT_JOB),
    ("POST", "/v1/providers/execute/stream"): Sdk("execute_provider_stream", kwargs=TEXT_JOB),
    ("POST", "/v1/providers/estimate"): Sdk("estimate_cost", kwargs=TEXT_JOB),
    ("GET", "/v1/organizations/{org_id}/usage"): Sdk("get_org_usage", ("org-1",)),
    ("GET", "/v1/organizations/{org_id}/usage/records"): Sdk(
        "get_org_usage_records", ("org-1",), iterator="iter_org_usage_records"
    ),
    ("GET", "/v1/organizations/{org_id}/usage/daily"): Sdk("get_org_usage_daily", ("org-1",)),
    ("GET", "/v1/organizations/{org_id}/budget"): Sdk("get_budget", ("org-1",)),
    ("PUT", "/v1/organizations/{org_id}/budget"): Sdk(
        "set_budget", ("org-1",), kwargs={"monthly_limit_usd": 10.0}
    ),
    ("GET", "/v1/organizations/{org_id}/usage/spending"): Sdk("get_org_spending", ("org-1",)),
    ("GET", "/v1/organizations/{org_id}/limits"): Sdk("get_org_limits", ("org-1",)),
    ("PUT", "/v1/organizations/{org_id}/limits"): Sdk("set_org_limits", ("org-1",)),
    # --- galleries
    ("GET", "/v1/galleries"): Sdk("list_galleries"),
    ("POST", "/v1/galleries"): Sdk("create_gallery", kwargs={"kind": "persona", "name": "n"}),
    ("GET", "/v1/galleries/{gallery_id}"): Sdk("get_gallery", ("g-1",)),
    ("DELETE", "/v1/galleries/{gallery_id}"): Sdk("delete_gallery", ("g-1",)),
    ("GET", "/v1/galleries/{gallery_id}/items"): Sdk(
        "list_gallery_items", ("g-1",), iterator="iter_gallery_items"
    ),
    ("POST", "/v1/galleries/{gallery_id}/items"): Sdk("add_gallery_item", ("g-1",)),
    ("DELETE", "/v1/gallery-items/{item_id}"): Sdk("delete_gallery_item", ("i-1",)),
    # --- webhooks
    ("POST", "/v1/webhooks"): Sdk(
        "create_webhook",
        kwargs={**ORG, "url": "https://example.com/hooks"},
        renamed=BY_ORG_ID,
        omitted={"event_filter": "the other name of events, which the SDK sends"},
    ),
    ("GET", "/v1/organizations/{organization_id}/webhooks"): Sdk("list_webhooks", ("org-1",)),
    ("GET", "/v1/webhooks/{webhook_id}"): Sdk("get_webhook", ("wh-1",)),
    ("PATCH", "/v1/webhooks/{webhook_id}"): Sdk("update_webhook", ("wh-1",)),
    ("DELETE", "/v1/webhooks/{webhook_id}"): Sdk("delete_webhook", ("wh-1",)),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): Sdk(
        "list_webhook_deliveries", ("wh-1",), iterator="iter_webhook_deliveries"
    ),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Sdk(
        "redeliver_webhook_delivery", ("wh-1", "dl-1")
    ),
    # --- organizations, teams, invitations
    ("GET", "/v1/organizations"): Sdk("list_organizations"),
    ("POST", "/v1/organizations"): Sdk("create_organization", kwargs={"slug": "a", "name": "A"}),
    ("GET", "/v1/organizations/{org_id}"): Sdk("get_organization", ("org-1",)),
    ("PATCH", "/v1/organizations/{org_id}"): Sdk("update_organization", ("org-1",)),
    ("POST", "/v1/organizations/{org_id}/archive"): Sdk("archive_organization", ("org-1",)),
    ("POST", "/v1/organizations/{org_id}/unarchive"): Sdk("unarchive_organization", ("org-1",)),
    ("GET", "/v1/organizations/{org_id}/members"): Sdk("list_org_members", ("org-1",)),
    ("PATCH", "/v1/organizations/{org_id}/members/{principal_id}"): Sdk(
        "update_org_member", ("org-1", "p-1"), kwargs={"role": "member"}
    ),
    ("DELETE", "/v1/organizations/{org_id}/members/{principal_id}"): Sdk(
        "remove_org_member", ("org-1", "p-1")
    ),
    ("GET", "/v1/organizations/{org_id}/teams"): Sdk("list_org_teams", ("org-1",)),
    ("POST", "/v1/teams"): Sdk(
        "create_team", kwargs={**ORG, "slug": "t", "name": "T"}, renamed=BY_ORG_ID
    ),
    ("GET", "/v1/teams/{team_id}"): Sdk("get_team", ("t-1",)),
    ("POST", "/v1/invitations"): Sdk(
        "create_invitation", kwargs={**ORG, "email": EMAIL}, renamed=BY_ORG_ID
    ),
    ("GET", "/v1/invitations"): Sdk("list_invitations", kwargs=ORG, renamed=BY_ORG_ID),
    ("GET", "/v1/invitations/{invitation_id}"): Sdk("get_invitation", ("inv-1",)),
    ("POST", "/v1/invitations/{invitation_id}/revoke"): Sdk("revoke_invitation", ("inv-1",)),
    ("POST", "/v1/invitations/{invitation_id}/accept"): Sdk("accept_invitation", ("inv-1",)),
    # --- identity and access
    ("GET", "/v1/me"): Sdk("get_me"),
    ("GET", "/v1/me/organizations"): Sdk("get_my_organizations"),
    ("GET", "/v1/me/teams"): Sdk("get_my_teams"),
    ("GET", "/v1/me/permissions"): Sdk("get_my_permissions"),
    ("POST", "/v1/authz/check"): Sdk(
        "check_permission",
        kwargs={"action": "job.read"},
        omitted={"resource": "the 'type:id' spelling of resource_type and resource_id"},
    ),
    ("POST", "/v1/authz/check-batch"): Sdk("check_permissions", kwargs={"checks": []}),
    ("POST", "/v1/permissions"): Sdk(
        "create_permission_grant",
        kwargs={**ORG, "principal_id": "p-1", "action": "job.read"},
        renamed=BY_ORG_ID,
    ),
    ("GET", "/v1/permissions"): Sdk("list_permission_grants", kwargs=ORG, renamed=BY_ORG_ID),
    ("DELETE", "/v1/permissions/{grant_id}"): Sdk("delete_permission_grant", ("gr-1",)),
    ("POST", "/v1/api-keys"): Sdk("create_api_key", kwargs={"name": "ci"}),
    ("GET", "/v1/api-keys"): Sdk("list_api_keys"),
    ("GET", "/v1/api-keys/{key_id}"): Sdk("get_api_key", ("k-1",)),
    ("DELETE", "/v1/api-keys/{key_id}"): Sdk("delete_api_key", ("k-1",)),
    ("POST", "/v1/api-keys/{key_id}/rotate"): Sdk("rotate_api_key", ("k-1",)),
    ("POST", "/v1/api-keys/{key_id}/disable"): Sdk("disable_api_key", ("k-1",)),
    # The organization of the secrets is the client's (spec §Secrets).
    ("POST", "/v1/organizations/{org_id}/secrets"): Sdk(
        "set_secret", kwargs={"name": "A", "value": "v"}
    ),
    ("GET", "/v1/organizations/{org_id}/secrets"): Sdk("list_secrets"),
    ("DELETE", "/v1/organizations/{org_id}/secrets/{name}"): Sdk("delete_secret", ("A",)),
}

NOT_COVERED: dict[tuple[str, str], str] = {
    **{
        ("POST", path): "the code worker protocol: Worker / AsyncWorker speak it"
        for path in (
            "/v1/workers",
            "/v1/workers/{worker_id}/tasks/poll",
            "/v1/workers/{worker_id}/heartbeat",
            "/v1/workers/{worker_id}/tasks/{task_id}/complete",
            "/v1/workers/{worker_id}/tasks/{task_id}/fail",
            "/v1/workers/{worker_id}/tasks/{task_id}/progress",
            "/v1/workers/{worker_id}/tasks/{task_id}/log",
        )
    },
    ("GET", "/v1/auth/magic-link/verify"): "the mailed link a browser opens (verify_magic_link)",
    ("GET", "/v1/auth/reset-password"): "the mailed link a browser opens (reset_password)",
    ("GET", "/v1/auth/verify"): "the mailed link a browser opens (verify_email)",
    ("GET", "/v1/invitations/{invitation_id}/accept"): "the mailed link (accept_invitation)",
    ("GET", "/v1/auth/social/{provider}"): "a browser redirect; social_login_url builds its URL",
    ("GET", "/v1/auth/callback"): "where the OAuth provider sends the browser back",
    ("POST", "/v1/auth/social-login"): (
        "for a trusted back end holding FABRIC_SOCIAL_LOGIN_TRUSTED_KEY, which signs in its own "
        "users: their tokens are not the SDK client's session"
    ),
    ("GET", "/v1/workflows/runs/{run_id}"): "alias of /v1/workflow-runs/{run_id}",
    ("POST", "/v1/workflows/runs/{run_id}/cancel"): "alias of /v1/workflow-runs/{run_id}/cancel",
    ("POST", "/v1/workflows/runs/{run_id}/pause"): "alias of /v1/workflow-runs/{run_id}/pause",
    ("POST", "/v1/workflows/runs/{run_id}/resume"): "alias of /v1/workflow-runs/{run_id}/resume",
    ("POST", "/v1/organizations/{organization_id}/webhooks"): (
        "the other form of webhook creation; create_webhook posts to /v1/webhooks"
    ),
    ("GET", "/v1/dev/outbox"): "dev mode only: the local mail outbox, for tests and demos",
}

# Public SDK methods that are not the call of one route.
SDK_HELPERS = {
    "close": "releases the connections",
    "wait_for_run": "get_run with a long wait (polls against servers without one)",
    "wait_for_job": "get_job with a long wait (polls against servers without one)",
    "list_providers": "alias of providers",
    "social_login_url": "builds the URL of GET /v1/auth/social/{provider}, sends nothing",
}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    # Building the app connects to nothing: the document is all that is read.
    app = create_app(fast_settings(f"sqlite:///{data_dir}/unused.db", data_dir))
    document: dict[str, Any] = app.openapi()
    return document


def v1_routes(openapi: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in openapi["paths"].items()
        if path.startswith("/v1/")
        for method, operation in operations.items()
    }


def resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [s for s in schema[union] if s.get("type") != "null"]
            return resolve(openapi, options[0])
    return schema


def route_fields(openapi: dict[str, Any], operation: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Every query and body field of a route: name -> (where, schema)."""
    fields: dict[str, tuple[str, Any]] = {
        p["name"]: ("query", p["schema"])
        for p in operation.get("parameters", [])
        if p["in"] == "query"
    }
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        schema = resolve(openapi, body["schema"])
        for name, prop in schema.get("properties", {}).items():
            fields[name] = ("body", prop)
    return fields


def sample(openapi: dict[str, Any], name: str, schema: dict[str, Any]) -> Any:
    """A value the route accepts for the field, recognisable in the request."""
    schema = resolve(openapi, schema)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer":
        return 7
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [sample(openapi, name, schema.get("items", {"type": "string"}))]
    if kind == "object" or (kind is None and "properties" in schema):
        required = schema.get("required", [])
        if required:  # an object the route accepts: its required fields, sampled
            props = schema["properties"]
            return {field: sample(openapi, field, props[field]) for field in required}
        return {"key": f"value-of-{name}"}
    if schema.get("format") == "date-time":
        return "2025-01-02T03:04:05+00:00"
    if schema.get("format") == "date":
        return "2025-01-02"
    return f"value-of-{name}"


def on_the_wire(value: Any) -> str:
    """How a query value travels (lists comma-joined, booleans lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(on_the_wire(v) for v in value)
    return str(value)


GENERIC = {
    "id": "id-1",
    "status": "pending",
    "items": [],
    "next_cursor": None,
    "access_token": "token",
    "expires_in": 3600,
}
SSE_EVENT = b'event: job.completed\nid: 1\ndata: {"id": "1", "kind": "job.completed"}\n\n'


def answer(request: httpx.Request) -> httpx.Response:
    if request.headers.get("accept") == "text/event-stream":
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=SSE_EVENT)
    return httpx.Response(200, json={"data": GENERIC, "meta": {"status": 200}})


def sent_requests(sdk: Sdk, **extra: Any) -> list[httpx.Request]:
    """The requests one call of the SDK method sends, with ``extra`` arguments."""
    recorded: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        recorded.append(request)
        return answer(request)

    with FabricClient(transport=httpx.MockTransport(record), max_retries=0) as client:
        result = getattr(client, sdk.method)(*sdk.args, **{**sdk.kwargs, **extra})
        if isinstance(result, (EventStream, ProviderStream)):  # lazy: read to send
            with contextlib.suppress(FabricError, StopIteration):
                next(result)
            result.close()
    return recorded


def matching(requests: list[httpx.Request], method: str, path: str) -> httpx.Request:
    pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
    found = [r for r in requests if r.method == method and pattern.match(r.url.path)]
    assert found, f"no {method} {path} among {[(r.method, r.url.path) for r in requests]}"
    return found[0]


def carried(request: httpx.Request, where: str, name: str) -> Any:
    if where == "query":
        return request.url.params.get(name)
    body = json.loads(request.content) if request.content else {}
    return body.get(name, "<absent>")


def parameters(client_class: type, method: str) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(getattr(client_class, method)).parameters


def takes(client_class: type, method: str, name: str) -> bool:
    params = parameters(client_class, method)
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def test_every_v1_route_is_covered_or_listed(openapi: dict[str, Any]) -> None:
    routes = set(v1_routes(openapi))

    forgotten = routes - set(COVERED) - set(NOT_COVERED)
    stale = (set(COVERED) | set(NOT_COVERED)) - routes
    assert not forgotten, f"routes with no SDK method (add one, or list why not): {forgotten}"
    assert not stale, f"listed routes the server no longer has: {stale}"
    assert not set(COVERED) & set(NOT_COVERED)


def test_every_public_sdk_method_is_accounted_for() -> None:
    named = {sdk.method for sdk in COVERED.values()}
    named |= {sdk.iterator for sdk in COVERED.values() if sdk.iterator}
    for client_class in (FabricClient, AsyncFabricClient):
        public = {
            name
            for name, member in inspect.getmembers(client_class)
            if not name.startswith("_") and inspect.isfunction(member)
        }
        assert public - named - set(SDK_HELPERS) == set(), client_class.__name__
        assert named <= public, client_class.__name__


@pytest.mark.parametrize(("method", "path"), list(COVERED))
def test_the_sdk_method_sends_every_field_of_its_route(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    sdk = COVERED[(method, path)]
    fields = route_fields(openapi, v1_routes(openapi)[(method, path)])
    assert set(sdk.omitted) <= set(fields), "omissions must name real fields"

    matching(sent_requests(sdk), method, path)  # the base call reaches the route
    for name, (where, schema) in fields.items():
        if name in sdk.omitted:
            continue
        parameter = sdk.renamed.get(name, name)
        for client_class in (FabricClient, AsyncFabricClient):
            assert takes(client_class, sdk.method, parameter), (
                f"{client_class.__name__}.{sdk.method} has no parameter for {where} "
                f"field {name!r} of {method} {path}"
            )
        value = sample(openapi, name, schema)
        request = matching(sent_requests(sdk, **{parameter: value}), method, path)
        expected = on_the_wire(value) if where == "query" else value
        assert carried(request, where, name) == expected, f"{sdk.method}({parameter}=...)"


@pytest.mark.parametrize(("method", "path"), list(COVERED))
def test_every_paged_list_has_an_iterator_with_the_same_filters(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    sdk = COVERED[(method, path)]
    fields = route_fields(openapi, v1_routes(openapi)[(method, path)])
    if not PAGE_POSITION & set(fields):
        assert sdk.iterator is None, f"{path} is not paged"
        return
    assert sdk.iterator is not None, f"{method} {path} is paged: give it an iter_* helper"
    lister = set(parameters(FabricClient, sdk.method)) - PAGING_PARAMETERS
    for client_class in (FabricClient, AsyncFabricClient):
        iterator = parameters(client_class, sdk.iterator)
        assert "page_size" in iterator
        assert lister <= set(iterator), f"{client_class.__name__}.{sdk.iterator}"
    assert inspect.isgeneratorfunction(getattr(FabricClient, sdk.iterator))
    assert inspect.isasyncgenfunction(getattr(AsyncFabricClient, sdk.iterator))
