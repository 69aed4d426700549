"""The public call shapes: the constructor of the spec, and sync/async twins that match."""

from __future__ import annotations

import inspect

import pytest

from fabric_platform import AsyncFabricClient, FabricClient

# Methods that talk to the server: awaitable on the async client.
REQUEST_METHODS = [
    "close",
    "health_check",
    "create_job",
    "get_job",
    "list_jobs",
    "get_job_usage",
    "signup",
    "login",
    "magic_link",
    "verify_magic_link",
    "refresh_token",
    "logout",
    "logout_all",
    "change_password",
    "forgot_password",
    "reset_password",
    "verify_email",
    "resend_verification",
    "upsert_workflow",
    "list_workflows",
    "get_workflow",
    "run_workflow",
    "wait_for_run",
    "get_run",
    "list_runs",
    "cancel_run",
    "bulk_cancel_runs",
    "pause_run",
    "resume_run",
    "run_log",
    "list_children",
    "resume_node",
    "create_organization",
    "list_organizations",
    "get_organization",
    "update_organization",
    "archive_organization",
    "unarchive_organization",
    "list_org_members",
    "update_org_member",
    "remove_org_member",
    "create_team",
    "get_team",
    "list_org_teams",
    "create_invitation",
    "list_invitations",
    "get_invitation",
    "accept_invitation",
    "revoke_invitation",
    "get_me",
    "get_my_organizations",
    "get_my_teams",
    "get_my_permissions",
    "check_permission",
    "check_permissions",
    "create_permission_grant",
    "list_permission_grants",
    "delete_permission_grant",
    "create_api_key",
    "list_api_keys",
    "get_api_key",
    "rotate_api_key",
    "disable_api_key",
    "delete_api_key",
    "set_secret",
    "list_secrets",
    "delete_secret",
    "providers",
    "list_providers",
    "execute_provider",
    "estimate_cost",
    "get_org_usage",
    "get_org_usage_records",
    "get_org_usage_daily",
    "get_org_audit_logs",
    "get_audit_logs",
    "get_budget",
    "set_budget",
    "get_org_spending",
    "list_galleries",
    "list_gallery_items",
    "get_gallery",
    "create_gallery",
    "delete_gallery",
    "add_gallery_item",
    "delete_gallery_item",
    "create_webhook",
    "list_webhooks",
    "get_webhook",
    "update_webhook",
    "delete_webhook",
    "list_webhook_deliveries",
    "redeliver_webhook_delivery",
    "create_schedule",
    "list_schedules",
    "get_schedule",
    "update_schedule",
    "trigger_schedule",
    "schedule_history",
    "delete_schedule",
]
# Methods that send nothing when called: plain functions on both clients.
LOCAL_METHODS = [
    "social_login_url",
    "stream_job_events",
    "stream_run_events",
    "stream_events",
    "execute_provider_stream",
]
ITERATORS = [
    "iter_jobs",
    "iter_runs",
    "iter_org_usage_records",
    "iter_org_audit_logs",
    "iter_audit_logs",
    "iter_gallery_items",
    "iter_webhook_deliveries",
    "iter_schedule_history",
]
PUBLIC_METHODS = [*REQUEST_METHODS, *ITERATORS, *LOCAL_METHODS]


@pytest.mark.parametrize("client_class", [FabricClient, AsyncFabricClient])
def test_constructor_signature(client_class: type) -> None:
    parameters = inspect.signature(client_class).parameters

    assert [(p.name, p.kind, p.default) for p in parameters.values()] == [
        ("base_url", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        ("api_key", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        ("principal_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        # None: resolved in the constructor (argument, FABRIC_ORGANIZATION_ID, then the spec's
        # default organization for a client without an API key; see test_client).
        ("organization_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        ("timeout", inspect.Parameter.POSITIONAL_OR_KEYWORD, 30.0),
        ("max_retries", inspect.Parameter.KEYWORD_ONLY, 2),
        ("http_client", inspect.Parameter.KEYWORD_ONLY, None),
        ("transport", inspect.Parameter.KEYWORD_ONLY, None),
    ]


@pytest.mark.parametrize("name", PUBLIC_METHODS)
def test_async_twin_has_the_same_parameters(name: str) -> None:
    sync_parameters = inspect.signature(getattr(FabricClient, name)).parameters
    async_parameters = inspect.signature(getattr(AsyncFabricClient, name)).parameters

    assert [(p.name, p.kind, p.default) for p in sync_parameters.values()] == [
        (p.name, p.kind, p.default) for p in async_parameters.values()
    ]


@pytest.mark.parametrize("name", REQUEST_METHODS)
def test_async_methods_are_coroutines(name: str) -> None:
    assert inspect.iscoroutinefunction(getattr(AsyncFabricClient, name))
    assert not inspect.iscoroutinefunction(getattr(FabricClient, name))


@pytest.mark.parametrize("name", LOCAL_METHODS)
def test_local_methods_are_plain_on_both_clients(name: str) -> None:
    for client_class in (FabricClient, AsyncFabricClient):
        assert not inspect.iscoroutinefunction(getattr(client_class, name))


@pytest.mark.parametrize("name", ITERATORS)
def test_async_iterators_are_async_generators(name: str) -> None:
    assert inspect.isasyncgenfunction(getattr(AsyncFabricClient, name))


def test_create_job_takes_the_reference_positional_order() -> None:
    parameters = list(inspect.signature(FabricClient.create_job).parameters)

    assert parameters[:5] == ["self", "modality", "input", "params", "idempotency_key"]


def test_spec_call_shapes() -> None:
    """The positional parameters the product spec's snippets rely on."""
    shapes = {
        "signup": ["email", "password"],
        "reset_password": ["recovery_token", "new_password"],
        "upsert_workflow": ["name", "nodes", "defaults"],
        "run_workflow": ["workflow_id", "context", "priority"],
        "wait_for_run": ["run_id", "poll_interval", "timeout"],
        "resume_node": ["run_id", "node_key", "data"],
        "pause_run": ["run_id"],
        "resume_run": ["run_id"],
        "create_organization": ["slug", "name"],
        "get_organization": ["org_id"],
        "update_organization": ["org_id"],
        "archive_organization": ["org_id"],
        "unarchive_organization": ["org_id"],
        "list_org_members": ["org_id"],
        "update_org_member": ["org_id", "principal_id", "role"],
        "remove_org_member": ["org_id", "principal_id"],
        "create_team": ["org_id", "slug", "name"],
        "get_team": ["team_id"],
        "list_org_teams": ["org_id"],
        "create_invitation": ["org_id", "email", "role"],
        "accept_invitation": ["invitation_id"],
        "revoke_invitation": ["invitation_id"],
        "check_permission": ["action", "resource_type", "resource_id"],
        "check_permissions": ["checks"],
        "create_api_key": ["name", "org_id", "scopes"],
        "create_permission_grant": ["org_id", "principal_id", "action", "effect"],
        "list_invitations": ["org_id"],
        "get_org_audit_logs": ["org_id"],
        "get_audit_logs": [],
        "rotate_api_key": ["key_id"],
        "disable_api_key": ["key_id"],
        "delete_api_key": ["key_id"],
        "set_secret": ["name", "value"],
        "delete_secret": ["name"],
        "execute_provider": ["modality", "input", "model"],
        "execute_provider_stream": ["modality", "input", "model"],
        "estimate_cost": ["modality", "input", "model"],
        "get_org_usage": ["org_id"],
        "get_org_usage_records": ["org_id"],
        "get_org_usage_daily": ["org_id"],
        "get_budget": ["org_id"],
        "set_budget": ["org_id", "monthly_limit_usd"],
        "get_org_spending": ["org_id"],
        "list_galleries": ["kind"],
        "list_gallery_items": ["gallery_id", "tags"],
        "create_webhook": ["org_id", "url", "events", "secret"],
        "list_webhooks": ["org_id"],
        "update_webhook": ["webhook_id"],
        "delete_webhook": ["webhook_id"],
        "list_webhook_deliveries": ["webhook_id", "limit", "cursor"],
        "redeliver_webhook_delivery": ["webhook_id", "delivery_id"],
        "create_schedule": ["workflow_definition_id", "cron_expression"],
        "list_schedules": ["workflow_definition_id"],
        "update_schedule": ["schedule_id"],
        "trigger_schedule": ["schedule_id"],
        "schedule_history": ["schedule_id"],
        "delete_schedule": ["schedule_id"],
    }
    for name, expected in shapes.items():
        parameters = inspect.signature(getattr(FabricClient, name)).parameters.values()
        positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert positional[1:] == expected, name


def test_spec_defaults() -> None:
    def default(method: str, name: str) -> object:
        return inspect.signature(getattr(FabricClient, method)).parameters[name].default

    assert default("create_invitation", "role") == "member"
    assert default("check_permission", "resource_type") is None
    assert default("check_permission", "resource_id") is None
    assert default("create_api_key", "scopes") is None
    assert default("create_api_key", "org_id") is None  # or organization_id=, or the caller's
    assert default("create_webhook", "events") is None  # every event
    assert default("update_organization", "name") is None
    assert default("update_organization", "slug") is None
    update = inspect.signature(FabricClient.update_organization).parameters
    assert {update[name].kind for name in ("name", "slug")} == {inspect.Parameter.KEYWORD_ONLY}
    assert default("pause_run", "reason") is None
