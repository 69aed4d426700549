"""Business rules for workflow definitions: validated upsert by name, visibility."""

from __future__ import annotations

from functools import partial
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy.ext.asyncio import AsyncSession

from fabric_server.access.principal import Principal
from fabric_server.access.service import Access
from fabric_server.db.unique import create_or_find
from fabric_server.errors import Unprocessable, ValidationFailed
from fabric_server.workflows import graph, repository
from fabric_server.workflows.models import WorkflowDefinition
from fabric_server.workflows.nodes import OperationRegistry
from fabric_server.workflows.schemas import DEFAULTS_SCHEMA, NODE_SCHEMA, DefinitionUpsert


class DefinitionService:
    def __init__(self, access: Access, operations: OperationRegistry) -> None:
        self.access = access
        self.operations = operations

    async def upsert(
        self, session: AsyncSession, principal: Principal, body: DefinitionUpsert
    ) -> tuple[WorkflowDefinition, bool]:
        """Create the definition, or replace the one with this name (same id, next version).
        Returns (definition, created)."""
        org_id = await self.access.organization_for(session, principal, body.organization_id)
        await self.access.authorize(session, principal, org_id, "workflow.edit")
        defaults = body.defaults or {}
        nodes, errors = graph.normalise(body.nodes, defaults, self.operations)
        if errors:
            first = errors[0]
            where = f"node {first['node']}: " if first["node"] else ""
            # 400 when the body breaks the published schema (which also lists the known
            # operations); 422 when only rules beyond it are broken.
            error = ValidationFailed if _breaks_schema(body, errors) else Unprocessable
            raise error(
                f"The workflow definition is invalid: {where}{first['message']}",
                details={"errors": errors},
            )
        existing = await repository.definition_by_name(session, org_id, body.name, lock=True)
        if existing is None:
            definition = WorkflowDefinition(
                organization_id=org_id,
                name=body.name,
                version=1,
                description=body.description,
                nodes=nodes,
                defaults=defaults,
                created_by=principal.id,
            )

            async def insert() -> WorkflowDefinition:
                session.add(definition)
                await session.flush()
                return definition

            # Another request may create this name first: then update that one instead.
            find = partial(repository.definition_by_name, session, org_id, body.name, lock=True)
            found, created = await create_or_find(session, insert, find)
            if created:
                return found, True
            existing = found
        existing.version += 1
        existing.nodes = nodes
        existing.defaults = defaults
        existing.description = body.description
        await session.flush()
        return existing, False

    async def get(
        self, session: AsyncSession, principal: Principal, definition_id: str
    ) -> WorkflowDefinition:
        definition = await repository.get_definition(session, definition_id)
        missing = f"Workflow definition {definition_id} was not found."
        found, _ = await self.access.authorize_found(
            session, principal, definition, "workflow.read", missing=missing
        )
        return found

    async def list(
        self, session: AsyncSession, principal: Principal, organization_id: str | None
    ) -> list[WorkflowDefinition]:
        org_ids = await self.access.listable_org_ids(
            session, principal, organization_id, "workflow.read"
        )
        return await repository.list_definitions(session, org_ids)


_NODES = Draft202012Validator({"type": "array", "minItems": 1, "items": NODE_SCHEMA})
_DEFAULTS = Draft202012Validator(DEFAULTS_SCHEMA)


def _breaks_schema(body: DefinitionUpsert, errors: list[dict[str, Any]]) -> bool:
    if any(error["type"] == "unknown_operation" for error in errors):
        return True
    if body.defaults is not None and not _DEFAULTS.is_valid(body.defaults):
        return True
    return not _NODES.is_valid(body.nodes)
