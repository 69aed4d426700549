"""The JSON log line: fields, context, and credentials kept out."""

from __future__ import annotations

import io
import json
import logging
import sys
from types import SimpleNamespace

import pytest

from fabric_server.jobs.service import JOB_WORK_KIND
from fabric_server.observability.logs import (
    _REF_FIELD,
    JsonFormatter,
    bind_work,
    configure_logging,
    redact,
)
from fabric_server.webhooks.dispatcher import DELIVER_KIND
from fabric_server.workflows.effects import (
    NODE_TIMEOUT_KIND,
    NODE_WORK_KIND,
    RUN_CANCEL_KIND,
    RUN_START_KIND,
)


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("fabric_server.test", logging.INFO, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_a_line_is_one_json_object_with_the_basic_fields() -> None:
    line = JsonFormatter().format(_record("job %s done", "abc", fields={"status": 201}))
    data = json.loads(line)
    assert data["level"] == "INFO"
    assert data["logger"] == "fabric_server.test"
    assert data["message"] == "job abc done"
    assert data["status"] == 201
    assert data["time"].endswith("+00:00")
    assert "\n" not in line


def test_credentials_are_redacted_from_messages() -> None:
    for secret, text in [
        ("fab_live_abcdefghijklmnop", "key fab_live_abcdefghijklmnop used"),
        ("whsec_abcdefghijklmnopq", "signing with whsec_abcdefghijklmnopq"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig",
        ),
        ("s3cr3t-t0ken-value", "GET /v1/auth/verify?token=s3cr3t-t0ken-value&x=1"),
        ("sk-proj-abcdefghijkl", "provider key sk-proj-abcdefghijkl refused"),
        ("hunter2", "body {'email': 'a@b.c', 'password': 'hunter2'}"),
        ("opaque", 'sent {"refresh_token": "opaque"}'),
    ]:
        cleaned = redact(text)
        assert secret not in cleaned, cleaned
        assert "[redacted]" in cleaned


def test_ordinary_text_is_left_alone() -> None:
    text = "job 01a24513-7f08-7148 of task-1234567890 in fabric_server.engine: status=done"
    assert redact(text) == text


def test_exceptions_are_one_field_and_redacted() -> None:
    try:
        raise RuntimeError("refused fab_live_abcdefghijklmnop")
    except RuntimeError:
        record = _record("it broke")
        record.exc_info = sys.exc_info()
    data = json.loads(JsonFormatter().format(record))
    assert "RuntimeError" in data["exception"]
    assert "fab_live_abcdefghijklmnop" not in data["exception"]


async def test_work_items_bind_their_ids() -> None:
    item = SimpleNamespace(
        kind="workflow.node",
        id="w1",
        organization_id="o1",
        ref_id="n1",
        payload={"run_id": "r1"},
    )
    bind_work(item)  # this test's own task: nothing leaks into other tests
    data = json.loads(JsonFormatter().format(_record("x")))
    assert data["work_kind"] == "workflow.node"
    assert data["work_item_id"] == "w1"
    assert data["node_id"] == "n1"
    assert data["run_id"] == "r1"
    assert data["organization_id"] == "o1"


def test_every_work_kind_names_its_reference() -> None:
    kinds = {JOB_WORK_KIND, DELIVER_KIND, NODE_TIMEOUT_KIND, NODE_WORK_KIND}
    assert kinds | {RUN_CANCEL_KIND, RUN_START_KIND} == set(_REF_FIELD)


def test_lines_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("info", "text")
    try:
        monkeypatch.setattr(sys, "stderr", second)
        first.close()  # the stream of the moment the handler was made is gone
        logging.getLogger("fabric_server.test").info("still logged")
        assert "still logged" in second.getvalue()
    finally:
        root.handlers[:] = before
        root.setLevel(level)
