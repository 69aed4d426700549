"""The public call shapes: the constructor of the spec, and sync/async twins that match."""

from __future__ import annotations

import inspect

import pytest

from fabric_platform import AsyncFabricClient, FabricClient

PUBLIC_METHODS = [
    "close",
    "health_check",
    "create_job",
    "get_job",
    "list_jobs",
    "iter_jobs",
    "get_job_usage",
    "stream_job_events",
]


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


@pytest.mark.parametrize(
    "name", ["close", "health_check", "create_job", "get_job", "list_jobs", "get_job_usage"]
)
def test_async_methods_are_coroutines(name: str) -> None:
    assert inspect.iscoroutinefunction(getattr(AsyncFabricClient, name))


def test_async_iter_jobs_is_an_async_generator() -> None:
    assert inspect.isasyncgenfunction(AsyncFabricClient.iter_jobs)


def test_create_job_takes_the_reference_positional_order() -> None:
    parameters = list(inspect.signature(FabricClient.create_job).parameters)

    assert parameters[:5] == ["self", "modality", "input", "params", "idempotency_key"]
