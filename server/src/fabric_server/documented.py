"""Free-form JSON values whose rules are written as JSON Schema: the same schema is published
in `/openapi.json` and enforced on every request, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema


class Documented:
    """Annotation for a field typed as plain JSON (`Annotated[dict[str, Any],
    Documented(schema)]`): publishes `schema` and rejects (400 `validation_failed`) any value
    it does not accept."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._validator = Draft202012Validator(schema)

    def check(self, value: Any) -> Any:
        error = next(iter(self._validator.iter_errors(value)), None)
        if error is not None:
            where = "".join(f"[{part!r}]" for part in error.absolute_path)
            raise ValueError(f"{where or 'value'}: {error.message}"[:500])
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return dict(self.schema)
