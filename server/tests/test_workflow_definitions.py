"""Workflow definitions over HTTP: upsert and versions, normalisation, validation, visibility."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from server_helpers import assert_error

from fabric_server.access.models import Membership
from fabric_server.orgs.models import Organization
from fabric_server.services import Services
from fabric_server.settings import DEFAULT_ORGANIZATION_ID, DEV_OWNER_ID

GENERATE = {"key": "draft", "operation": "ai.generate", "config": {"prompt_template": "Hi"}}


async def upsert(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    payload = {"name": "pipeline", "nodes": [GENERATE], **body}
    return await client.post("/v1/workflow-definitions", json=payload)


async def errors_of(client: httpx.AsyncClient, nodes: list[Any], **body: Any) -> list[dict]:
    response = await upsert(client, nodes=nodes, **body)
    # 400 for a body that breaks the published schema, 422 for the rules beyond it.
    status = 400 if response.status_code == 400 else 422
    details = assert_error(response, status, "validation_failed")["error"]["details"]
    errors: list[dict] = details["errors"]
    assert errors
    return errors


async def test_upsert_creates_then_versions_in_place(client: httpx.AsyncClient) -> None:
    first = await upsert(
        client, organization_id=DEFAULT_ORGANIZATION_ID, defaults={"tier": "basic"}
    )
    assert first.status_code == 201
    created = first.json()["data"]
    assert created["name"] == "pipeline"
    assert created["version"] == 1
    assert created["organization_id"] == DEFAULT_ORGANIZATION_ID
    assert created["defaults"] == {"tier": "basic"}
    assert created["created_by"] == DEV_OWNER_ID

    second = await upsert(client, description="now described")
    assert second.status_code == 200
    updated = second.json()["data"]
    assert updated["id"] == created["id"]
    assert updated["version"] == 2
    assert updated["description"] == "now described"
    assert updated["updated_at"] >= created["updated_at"]

    other = await upsert(client, name="another")
    assert other.status_code == 201
    assert other.json()["data"]["id"] != created["id"]

    listed = (await client.get("/v1/workflow-definitions")).json()["data"]
    assert [d["name"] for d in listed] == ["another", "pipeline"]
    fetched = (await client.get(f"/v1/workflow-definitions/{created['id']}")).json()["data"]
    assert fetched == updated


async def test_the_sdk_seed_example_without_keys_is_normalised(client: httpx.AsyncClient) -> None:
    response = await upsert(
        client,
        name="my-pipeline",
        nodes=[{"type": "ai_generate", "config": {"prompt_template": "{{context.topic}}"}}],
        defaults={"timeout": 300},
    )
    assert response.status_code == 201
    (node,) = response.json()["data"]["nodes"]
    assert node == {
        "key": "ai_generate_1",
        "operation": "ai.generate",
        "config": {"prompt_template": "{{context.topic}}"},
        "inputs": [],
        "outputs": [],
        "depends_on": [],
        "policy": {},
        "runtime": None,
        "name": None,
        "description": None,
    }


async def test_every_node_spelling_is_normalised(client: httpx.AsyncClient) -> None:
    nodes = [
        {
            "kind": "ai_generate",
            "key": "a",
            "inputs": {"prompt": "$context.question"},
            "outputs": {"content": "$context.answer.text"},
            "runtime": "provider",
        },
        {
            "type": "text_transform_basic",
            "key": "b",
            "depends_on": "a",
            "config": {"operation": "upper"},
            "inputs": [{"name": "text", "path": "$context.answer.text"}],
            "outputs": [{"name": "text", "path": "$context.shout"}],
            "policy": {"timeout_ms": 1500, "max_retries": 1},
        },
        {"config": {"operation": "workflow.noop"}, "key": "c", "depends_on": ["a", "b", "a"]},
        {"operation": "workflow.wait_for_input", "key": "d", "depends_on": ["c"]},
    ]
    response = await upsert(client, nodes=nodes)
    assert response.status_code == 201, response.text
    a, b, c, d = response.json()["data"]["nodes"]
    assert a["operation"] == "ai.generate"
    assert a["runtime"] == "provider"
    assert a["inputs"] == [{"name": "prompt", "path": "$context.question"}]
    assert a["outputs"] == [{"name": "content", "path": "$context.answer.text"}]
    assert b["operation"] == "text.transform_basic"
    assert b["depends_on"] == ["a"]
    assert b["policy"] == {"timeout_ms": 1500, "max_retries": 1}
    assert c["operation"] == "workflow.noop"
    assert c["depends_on"] == ["a", "b"]
    assert d["operation"] == "workflow.approval"


@pytest.mark.parametrize(
    ("nodes", "node", "kind", "fragment"),
    [
        ([GENERATE, GENERATE], "draft", "duplicate_key", "duplicate node key"),
        # A typo in a built-in's namespace is never taken for a code worker's operation.
        ([{"key": "x", "operation": "ai.generat"}], "x", "unknown_operation", "ai.generat"),
        ([{"key": "x", "operation": "magicwand"}], "x", "unknown_operation", "acme.resize"),
        ([{**GENERATE, "depends_on": ["ghost"]}], "draft", "unknown_dependency", "ghost"),
        (
            [
                {"key": "a", "operation": "workflow.noop", "depends_on": ["b"]},
                {"key": "b", "operation": "workflow.noop", "depends_on": ["a"]},
            ],
            "a",
            "cycle",
            "a -> b -> a",
        ),
        (
            [{"key": "a", "operation": "workflow.noop", "inputs": {"x": "context.x"}}],
            "a",
            "invalid_binding",
            "$context.",
        ),
        (
            [{"key": "a", "operation": "workflow.noop", "outputs": [{"name": "x"}]}],
            "a",
            "invalid_binding",
            "$context.",
        ),
        ([{"key": "a", "operation": "ai.generate"}], "a", "invalid_config", "prompt_template"),
        (
            [{"key": "a", "operation": "ai.generate", "config": {"prompt_template": "{{nope}}"}}],
            "a",
            "invalid_config",
            "context.<path>",
        ),
        (
            [
                {
                    "key": "a",
                    "operation": "ai.generate",
                    "config": {"prompt_template": "x", "model": "mystery-9"},
                }
            ],
            "a",
            "invalid_config",
            "mystery-9",
        ),
        (
            [
                {
                    "key": "a",
                    "operation": "workflow.validate_context",
                    "config": {"schema": {"type": "no-such-type"}},
                }
            ],
            "a",
            "invalid_config",
            "JSON Schema",
        ),
        (
            [{"key": "a", "operation": "text.transform_basic", "config": {"operation": "rot13"}}],
            "a",
            "invalid_config",
            "config.operation",
        ),
        ([{"key": "a", "operation": "http.request"}], "a", "invalid_config", "config.url"),
        (
            [
                {
                    "key": "a",
                    "operation": "http.request",
                    "config": {"url": "http://x", "headers": {"A": "{{secret}}"}},
                }
            ],
            "a",
            "invalid_config",
            "config.headers",
        ),
        ([{"key": "a", "operation": "workflow.delay"}], "a", "invalid_config", "seconds"),
        ([{"key": "a", "operation": "workflow.subworkflow"}], "a", "invalid_config", "workflow"),
        (
            [{"key": "a", "operation": "workflow.fan_out", "config": {"branch_kind": "x"}}],
            "a",
            "invalid_config",
            "items",
        ),
        (
            [{"key": "a", "operation": "workflow.noop", "policy": {"max_retries": -1}}],
            "a",
            "invalid_config",
            "max_retries",
        ),
        (
            [{"key": "a", "operation": "workflow.noop", "colour": "red"}],
            "a",
            "invalid_node",
            "colour",
        ),
        ([{"key": "bad key!", "operation": "workflow.noop"}], "bad key!", "invalid_node", "key"),
        ([{"config": {}}], "nodes[0]", "invalid_node", "operation"),
        ([], None, "invalid_node", "at least one node"),
    ],
)
async def test_invalid_definitions_name_the_node_and_the_problem(
    client: httpx.AsyncClient, nodes: list[Any], node: str | None, kind: str, fragment: str
) -> None:
    errors = await errors_of(client, nodes)
    assert any(
        e["node"] == node and e["type"] == kind and fragment in e["message"] for e in errors
    ), errors
    assert (await client.get("/v1/workflow-definitions")).json()["data"] == []


async def test_a_node_that_is_not_an_object_is_rejected(client: httpx.AsyncClient) -> None:
    errors = await errors_of(client, [42])
    assert errors[0]["path"] == "nodes.0"


async def test_bad_defaults_are_rejected(client: httpx.AsyncClient) -> None:
    errors = await errors_of(client, [GENERATE], defaults={"timeout": 0})
    assert errors[0]["path"] == "defaults.timeout"
    errors = await errors_of(client, [GENERATE], defaults={"timeout_ms": "soon"})
    assert errors[0]["path"] == "defaults.timeout_ms"


FIRST = {"key": "first", "operation": "workflow.noop"}
LAST = {"key": "last", "operation": "workflow.noop", "depends_on": ["me"]}


def templated(op: str, **config: Any) -> list[dict[str, Any]]:
    """`me` between two other nodes: `first` runs before it, `last` after it."""
    me = {"key": "me", "operation": op, "config": config, "depends_on": ["first"]}
    return [FIRST, me, LAST]


HTTP = "http.request"


@pytest.mark.parametrize(
    ("nodes", "fragment"),
    [
        # Every templated field of every operation follows the same rules.
        (templated(HTTP, url="http://x", json={"text": "{{secret.key}}"}), "config.json.text"),
        (
            templated(HTTP, url="http://x", json={"a": [{"b": "{{nodes.ghost.content}}"}]}),
            "config.json.a.0.b: template variable `nodes.ghost.content` names no node",
        ),
        (templated(HTTP, url="http://x", json=["{{context.a"]), "config.json.0: template has"),
        (templated(HTTP, url="http://x", json={"{{context.k}}": 1}), "object keys"),
        (templated(HTTP, url="{{inputs.base}}/x"), "config.url: template variable `inputs.base`"),
        (
            templated(HTTP, url="http://x", headers={"X-Id": "{{nodes.last.id}}"}),
            "config.headers.X-Id: template variable `nodes.last.id` reads node `last`",
        ),
        (templated(HTTP, url="http://x", method="POST", body="{{nodes.me}}"), "own output"),
        (templated("ai.generate", prompt_template="{{nodes.nobody}}"), "config.prompt_template"),
        (
            templated("text.transform_basic", operation="template", template="{{inputs.t}}"),
            "config.template: template variable `inputs.t` names no input",
        ),
        (templated("workflow.approval", prompt="OK? {{ctx.x}}"), "config.prompt"),
    ],
)
async def test_templates_that_cannot_resolve_are_refused_when_saving(
    client: httpx.AsyncClient, nodes: list[dict[str, Any]], fragment: str
) -> None:
    errors = await errors_of(client, nodes)
    assert [(e["node"], e["type"]) for e in errors] == [("me", "invalid_config")]
    assert fragment in errors[0]["message"], errors


async def test_templates_in_defaults_are_checked_for_each_node(
    client: httpx.AsyncClient,
) -> None:
    nodes = [
        {"key": "a", "operation": "ai.generate"},
        {"key": "b", "operation": "ai.generate", "config": {"prompt_template": "mine"}},
    ]
    errors = await errors_of(client, nodes, defaults={"prompt_template": "{{inputs.q}}"})
    assert [e["node"] for e in errors] == ["a"]


async def test_templates_reaching_context_inputs_and_earlier_nodes_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    nodes = [
        {"key": "fetch.v2", "operation": "workflow.noop"},
        {"key": "draft", "operation": "ai.generate", "depends_on": ["fetch.v2"],
         "config": {"prompt_template": "{{context.topic}} {{nodes.fetch.v2.x}}"}},
        {"key": "send", "operation": HTTP, "depends_on": ["draft"],
         "inputs": {"token": "$context.token"},
         "config": {"url": "http://x/{{context.path}}", "method": "POST",
                    "headers": {"Authorization": "Bearer {{inputs.token}}"},
                    "json": {"text": "{{nodes.draft.content}}", "from": "{{nodes.fetch.v2}}",
                             "tags": ["{{context.tags}}"], "n": 1}}},
    ]  # fmt: skip
    response = await upsert(client, nodes=nodes)
    assert response.status_code == 201, response.text


async def test_defaults_apply_under_each_node(client: httpx.AsyncClient) -> None:
    # `model` from defaults reaches ai.generate's config check, so a bad one is refused.
    errors = await errors_of(client, [GENERATE], defaults={"model": "no-such-model"})
    assert "no-such-model" in errors[0]["message"]
    assert (await upsert(client, defaults={"model": "echo-1", "max_retries": 0})).status_code == 201


async def test_definitions_of_other_organizations_are_invisible(
    client: httpx.AsyncClient, services: Services
) -> None:
    outsider = str(uuid.uuid4())
    async with services.db.write() as session:
        org = Organization(slug="acme", name="Acme")
        session.add(org)
        await session.flush()
        session.add(Membership(organization_id=org.id, principal_id=outsider, role="owner"))
        acme_id = org.id
    theirs = await upsert(client, organization_id=acme_id)
    assert_error(theirs, 404, "not_found")
    response = await client.post(
        "/v1/workflow-definitions",
        json={"name": "secret", "organization_id": acme_id, "nodes": [GENERATE]},
        headers={"x-principal-id": outsider},
    )
    assert response.status_code == 201
    secret_id = response.json()["data"]["id"]
    assert_error(await client.get(f"/v1/workflow-definitions/{secret_id}"), 404, "not_found")
    assert (await client.get("/v1/workflow-definitions")).json()["data"] == []
    filtered = await client.get("/v1/workflow-definitions", params={"organization_id": acme_id})
    assert_error(filtered, 404, "not_found")
    run = await client.post("/v1/workflow-runs", json={"workflow_definition_id": secret_id})
    assert_error(run, 404, "not_found")


async def test_shape_errors_are_400_and_rule_errors_422(client: httpx.AsyncClient) -> None:
    shape = await upsert(client, nodes=[{"key": "a", "operation": "workflow.noop", "colour": 1}])
    assert_error(shape, 400, "validation_failed")
    unknown = await upsert(client, nodes=[{"key": "a", "operation": "workflow.no_such"}])
    assert_error(unknown, 400, "validation_failed")
    cycle = [
        {"key": "a", "operation": "workflow.noop", "depends_on": ["b"]},
        {"key": "b", "operation": "workflow.noop", "depends_on": ["a"]},
    ]
    assert_error(await upsert(client, nodes=cycle), 422, "validation_failed")
