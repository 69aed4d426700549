"""Status codes and transport failures become the documented exception classes (wire-spec §3)."""

from __future__ import annotations

from typing import Any, Callable

import httpx
import pytest

from fabric_platform import (
    FabricAPIError,
    FabricAuthError,
    FabricBudgetExceededError,
    FabricClient,
    FabricConflictError,
    FabricConnectionError,
    FabricError,
    FabricForbiddenError,
    FabricNotFoundError,
    FabricRateLimitError,
    FabricServerError,
    FabricTimeoutError,
    FabricValidationError,
)

from .helpers import Script, fail

MakeClient = Callable[..., FabricClient]


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (400, "bad_request", FabricValidationError),
        (401, "unauthorized", FabricAuthError),
        (402, "budget_exceeded", FabricBudgetExceededError),
        (403, "forbidden", FabricForbiddenError),
        (404, "not_found", FabricNotFoundError),
        (409, "conflict", FabricConflictError),
        (422, "validation_failed", FabricValidationError),
        (429, "rate_limited", FabricRateLimitError),
        (500, "internal_error", FabricServerError),
        (503, "unavailable", FabricServerError),
        (418, "teapot", FabricAPIError),
    ],
)
def test_status_maps_to_exception_class(
    make_client: MakeClient, status: int, code: str, error_class: type[FabricAPIError]
) -> None:
    client = make_client(Script(fail(status, code, "it went wrong", request_id="req_9")))

    with pytest.raises(error_class) as info:
        client.get_job("job-1")

    error = info.value
    assert type(error) is error_class
    assert isinstance(error, FabricError)
    assert error.status_code == status
    assert error.code == code
    assert error.message == "it went wrong"
    assert str(error) == "it went wrong"
    assert error.request_id == "req_9"
    assert error.response is not None
    assert error.response.status_code == status


def test_non_json_502_is_a_server_error_without_code(make_client: MakeClient) -> None:
    html = httpx.Response(502, text="<html>Bad Gateway</html>")
    client = make_client(Script(html), max_retries=0)

    with pytest.raises(FabricServerError) as info:
        client.health_check()

    assert info.value.status_code == 502
    assert info.value.code is None
    assert info.value.message == "HTTP 502"
    assert info.value.request_id is None


@pytest.mark.parametrize(
    "body",
    [
        {"data": None, "meta": {"status": 404}},
        {"error": "not an object"},
        {"error": {"code": 7, "message": ""}},
        ["a", "list"],
    ],
)
def test_message_falls_back_to_http_status(make_client: MakeClient, body: Any) -> None:
    client = make_client(Script(httpx.Response(404, json=body)))

    with pytest.raises(FabricNotFoundError) as info:
        client.get_job("job-1")

    assert info.value.message == "HTTP 404"
    assert info.value.code is None


def test_details_are_kept(make_client: MakeClient) -> None:
    details = {"errors": [{"path": "input.prompt", "message": "required"}]}
    client = make_client(Script(fail(400, "input_validation_failed", "bad input", details=details)))

    with pytest.raises(FabricValidationError) as info:
        client.create_job(modality="text", input={})

    assert info.value.details == details


def test_request_id_falls_back_to_header(make_client: MakeClient) -> None:
    response = httpx.Response(409, json={"error": {}}, headers={"X-Request-Id": "req_h"})
    client = make_client(Script(response))

    with pytest.raises(FabricConflictError) as info:
        client.get_job("job-1")

    assert info.value.request_id == "req_h"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("12", 12.0), ("0", 0.0), ("1.5", 1.5), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("-3", None)],
)
def test_rate_limit_retry_after_is_delta_seconds_only(
    make_client: MakeClient, header: str, expected: Any
) -> None:
    response = fail(429, "rate_limited", "slow down", headers={"Retry-After": header})
    client = make_client(Script(response), max_retries=0)

    with pytest.raises(FabricRateLimitError) as info:
        client.get_job("job-1")

    assert info.value.retry_after == expected


def test_rate_limit_without_retry_after(make_client: MakeClient) -> None:
    client = make_client(Script(fail(429, "rate_limited", "slow down")), max_retries=0)

    with pytest.raises(FabricRateLimitError) as info:
        client.get_job("job-1")

    assert info.value.retry_after is None


def test_connection_error_is_wrapped(make_client: MakeClient) -> None:
    cause = httpx.ConnectError("connection refused")
    client = make_client(Script(cause), max_retries=0)

    with pytest.raises(FabricConnectionError) as info:
        client.health_check()

    assert not isinstance(info.value, FabricTimeoutError)
    assert info.value.__cause__ is cause
    assert not isinstance(info.value, httpx.HTTPError)


def test_timeout_is_wrapped(make_client: MakeClient) -> None:
    cause = httpx.ReadTimeout("too slow")
    client = make_client(Script(cause), max_retries=0)

    with pytest.raises(FabricTimeoutError) as info:
        client.health_check()

    assert isinstance(info.value, FabricConnectionError)
    assert info.value.__cause__ is cause


@pytest.mark.parametrize(
    "cause",
    [
        httpx.DecodingError("bad gzip"),
        httpx.TooManyRedirects("loop"),
        httpx.InvalidURL("bad url"),
        httpx.StreamClosed(),
    ],
)
def test_no_httpx_exception_escapes(make_client: MakeClient, cause: Exception) -> None:
    client = make_client(Script(cause))

    with pytest.raises(FabricError) as info:
        client.health_check()

    assert info.value.__cause__ is cause


def test_repr_names_status_code_and_request() -> None:
    error = FabricNotFoundError("gone", status_code=404, code="not_found", request_id="req_1")

    assert repr(error) == (
        "FabricNotFoundError(status_code=404, code='not_found', message='gone', request_id='req_1')"
    )
