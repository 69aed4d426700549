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
    "upsert_workflow",
    "list_workflows",
    "get_workflow",
    "run_workflow",
    "wait_for_run",
    "get_run",
    "list_runs",
    "cancel_run",
    "bulk_cancel_runs",
    "run_log",
    "list_children",
    "resume_node",
    "create_schedule",
    "list_schedules",
    "get_schedule",
    "update_schedule",
    "trigger_schedule",
    "schedule_history",
    "delete_schedule",
]
# Methods that send nothing when called: plain functions on both clients.
LOCAL_METHODS = ["social_login_url", "stream_job_events", "stream_run_events", "stream_events"]
PUBLIC_METHODS = [*REQUEST_METHODS, "iter_jobs", *LOCAL_METHODS]


@pytest.mark.parametrize("client_class", [FabricClient, AsyncFabricClient])
def test_constructor_signature(client_class: type) -> None:
    parameters = inspect.signature(client_class).parameters

    assert [(p.name, p.kind, p.default) for p in parameters.values()] == [
        ("base_url", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        ("api_key", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        ("principal_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        (
            "organization_id",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            "00000000-0000-0000-0000-000000000010",
        ),
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


def test_async_iter_jobs_is_an_async_generator() -> None:
    assert inspect.isasyncgenfunction(AsyncFabricClient.iter_jobs)


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
