"""`/openapi.json`: the exact contract. FastAPI drafts it from the routes and their pydantic
models; this module settles what the models alone cannot say.

* A request body is `required` exactly when `{}` is not a valid body: a body-less POST is
  read as `{}` (wire contract), so a route whose body may be all defaults takes no body.
* A query or path parameter is never `null` on the wire: `X | None` is published as `X`.
* What this server's configuration accepts is written in: the password policy, and the
  workflow operations it knows.
* Links tie each create operation to the operations that read, change or delete what it
  created, so a client (or a stateful fuzzer) can follow an id from one call to the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from jsonschema import Draft202012Validator

from fabric_server.workflows.nodes.worker import MAX_OPERATION_LENGTH, OPERATION_PATTERN

# Body fields that take a new password: their `minLength` is the configured policy.
NEW_PASSWORD_FIELDS = {
    "SignupRequest": "password",
    "ChangePasswordRequest": "new_password",
    "ResetPasswordRequest": "new_password",
}


@dataclass(frozen=True)
class Link:
    """`source` creates something; `target` operations address it by `parameter`.

    `target` is a path prefix ending in `{parameter}`: every operation under it is linked.
    `value` is where the created object's id is found in the source's response.
    """

    source: tuple[str, str]
    target: str
    parameter: str
    value: str = "$response.body#/data/id"


ORGANIZATION_CREATE = ("POST", "/v1/organizations")
LINKS = (
    Link(("POST", "/v1/jobs"), "/v1/jobs/{job_id}", "job_id"),
    Link(("POST", "/v1/organizations"), "/v1/organizations/{org_id}", "org_id"),
    Link(
        ("POST", "/v1/organizations"),
        "/v1/organizations/{organization_id}",
        "organization_id",
    ),
    Link(("POST", "/v1/teams"), "/v1/teams/{team_id}", "team_id"),
    Link(("POST", "/v1/invitations"), "/v1/invitations/{invitation_id}", "invitation_id"),
    Link(("POST", "/v1/permissions"), "/v1/permissions/{grant_id}", "grant_id"),
    Link(("POST", "/v1/api-keys"), "/v1/api-keys/{key_id}", "key_id"),
    Link(("POST", "/v1/galleries"), "/v1/galleries/{gallery_id}", "gallery_id"),
    Link(("POST", "/v1/galleries/{gallery_id}/items"), "/v1/gallery-items/{item_id}", "item_id"),
    Link(
        ("POST", "/v1/organizations/{org_id}/secrets"),
        "/v1/organizations/{org_id}/secrets/{name}",
        "name",
        "$response.body#/data/name",
    ),
    Link(("POST", "/v1/webhooks"), "/v1/webhooks/{webhook_id}", "webhook_id"),
    Link(
        ("POST", "/v1/organizations/{organization_id}/webhooks"),
        "/v1/webhooks/{webhook_id}",
        "webhook_id",
    ),
    Link(
        ("POST", "/v1/workflow-definitions"),
        "/v1/workflow-definitions/{definition_id}",
        "definition_id",
    ),
    Link(
        ("POST", "/v1/workflow-definitions/{definition_id}/schedules"),
        "/v1/schedules/{schedule_id}",
        "schedule_id",
    ),
    Link(("POST", "/v1/workflow-runs"), "/v1/workflow-runs/{run_id}", "run_id"),
    Link(("POST", "/v1/workflow-runs"), "/v1/workflows/runs/{run_id}", "run_id"),
)

# Links that fill a body field instead of a path parameter: a definition's id starts runs.
BODY_LINKS = (
    (
        ("POST", "/v1/workflow-definitions"),
        ("POST", "/v1/workflow-runs"),
        {"workflow_definition_id": "$response.body#/data/id"},
    ),
)


def install_openapi(app: FastAPI, *, password_min_length: int, operations: list[str]) -> None:
    """Serve the settled document (built once, on first request) at `/openapi.json`."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            settle(document, password_min_length=password_min_length, operations=operations)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def settle(document: dict[str, Any], *, password_min_length: int, operations: list[str]) -> None:
    """Apply the rules of this module's docstring to a drafted document, in place."""
    schemas = document.get("components", {}).get("schemas", {})
    _name_operations(schemas, operations)
    for model, field in NEW_PASSWORD_FIELDS.items():
        prop = schemas.get(model, {}).get("properties", {}).get(field)
        if prop is not None:
            prop["minLength"] = max(password_min_length, prop.get("minLength", 0))
    accepts_empty = _empty_object_check(document)
    for _path, _method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            parameter["schema"] = _without_null(parameter.get("schema", {}))
        body = operation.get("requestBody")
        content = (body or {}).get("content", {}).get("application/json")
        if body is not None and content is not None:
            body["required"] = not accepts_empty(content.get("schema", {}))
    _add_links(document)


def _name_operations(schemas: dict[str, Any], operations: list[str]) -> None:
    """Workflow nodes name operations of this server's registry, or code workers' ones."""
    worker_operation = {
        "type": "string",
        "pattern": OPERATION_PATTERN,
        "maxLength": MAX_OPERATION_LENGTH,
    }
    node = schemas.get("DefinitionUpsert", {}).get("properties", {}).get("nodes", {})
    items = node.get("items", {})
    # A built-in operation, or one served by code workers (a dotted name of their own).
    named = [{"enum": list(operations)}, worker_operation]
    for name in ("operation", "type", "kind"):
        if name in items.get("properties", {}):
            items["properties"][name]["anyOf"] = [*named, {"type": "null"}]
    for branch in items.get("anyOf", []):
        for name, prop in branch.get("properties", {}).items():
            if name in ("operation", "type", "kind"):
                prop["anyOf"] = list(named)
            elif name == "config":
                prop["properties"]["operation"]["anyOf"] = list(named)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter typed `X | None` is `X`: leaving it out is how a client sends "none"."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(options):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**rest, **kept[0]}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


def _empty_object_check(document: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    components = document.get("components", {})

    def accepts_empty(schema: dict[str, Any]) -> bool:
        validator = Draft202012Validator({**schema, "components": components})
        return validator.is_valid({})

    return accepts_empty


def _add_links(document: dict[str, Any]) -> None:
    operations = {(method, path): op for path, method, op in _operations(document)}
    for link in LINKS:
        source = operations.get(link.source)
        if source is None:
            continue
        for (method, path), target in sorted(operations.items()):
            if path == link.target or path.startswith(link.target + "/"):
                name = f"{method}{path}".replace("/", "_").replace("{", "").replace("}", "")
                parameters = {link.parameter: link.value}
                # A parameter both paths share (the organization of a secret) is passed on.
                for shared in _path_parameters(link.source[1]) & _path_parameters(path):
                    parameters.setdefault(shared, f"$request.path.{shared}")
                _attach(
                    source,
                    name,
                    {"operationId": target["operationId"], "parameters": parameters},
                )
    # A new organization's id goes into the body of everything created in an organization.
    schemas = document.get("components", {}).get("schemas", {})
    for (method, path), target in sorted(operations.items()):
        if "organization_id" in _body_properties(target, schemas):
            _attach(
                operations[ORGANIZATION_CREATE],
                f"{method}{path}".replace("/", "_").replace("{", "").replace("}", ""),
                {
                    "operationId": target["operationId"],
                    "requestBody": {"organization_id": "$response.body#/data/id"},
                },
            )
    for source_key, target_key, body in BODY_LINKS:
        creator, receiver = operations.get(source_key), operations.get(target_key)
        if creator is not None and receiver is not None:
            name = f"{target_key[0]}{target_key[1]}".replace("/", "_")
            _attach(creator, name, {"operationId": receiver["operationId"], "requestBody": body})


def _body_properties(operation: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = schemas.get(ref.rsplit("/", 1)[-1], {})
    properties: dict[str, Any] = schema.get("properties", {})
    return properties


def _path_parameters(path: str) -> set[str]:
    return {part[1:-1] for part in path.split("/") if part.startswith("{")}


def _attach(source: dict[str, Any], name: str, definition: dict[str, Any]) -> None:
    for status, response in source["responses"].items():
        if str(status).startswith("2"):
            response.setdefault("links", {})[name] = definition
