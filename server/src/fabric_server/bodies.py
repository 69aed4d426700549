"""The base of every JSON request body: numbers and booleans are taken only as themselves."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Strict
from pydantic_core import PydanticCustomError

_SCALARS = (int, float, bool)


def _json_integer(value: Any) -> Any:
    # JSON Schema's integer is a number without a fraction (5 or 5.0), never "5" or true.
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


#: An integer as JSON Schema says (5 or 5.0, never "5" or true), for integers inside
#: containers (the body's own fields get the rule by themselves).
JsonInt = Annotated[int, BeforeValidator(_json_integer)]


def _rule_for(kind: Any) -> Any:
    return BeforeValidator(_json_integer) if kind is int else Strict()


class RequestBody(BaseModel):
    """A request body whose integer, number and boolean fields refuse strings ("5", "true")
    — and, for integers and numbers, booleans — as the published schema says: a client that
    sends the wrong type learns it from a 400 instead of having it silently converted. Other
    fields (dates, enums, ids) still parse from their JSON strings. An integer field accepts
    5.0 (the same number), a number field accepts an integer."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        changed = False
        for field in cls.model_fields.values():
            if field.annotation in _SCALARS:
                field.metadata.append(_rule_for(field.annotation))
                changed = True
            elif _is_scalar(field.annotation):  # optional: constraints and rule on each member
                field.annotation = _with_rules(field.annotation, field.metadata)
                field.metadata = []
                changed = True
        if changed:
            cls.model_rebuild(force=True)


def _is_scalar(annotation: Any) -> bool:
    """`int`, `float` or `bool`, possibly optional or annotated."""
    if typing.get_origin(annotation) is Annotated:
        return _is_scalar(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if not _is_none(a)]
        return bool(members) and all(_is_scalar(member) for member in members)
    return annotation in _SCALARS


def _with_rules(annotation: Any, constraints: list[Any]) -> Any:
    members = tuple(
        member if _is_none(member) else Annotated[member, *constraints, _rule_for(_base(member))]
        for member in typing.get_args(annotation)
    )
    return typing.Union[members]


def _base(annotation: Any) -> Any:
    if typing.get_origin(annotation) is Annotated:
        return _base(typing.get_args(annotation)[0])
    return annotation


def _is_none(annotation: Any) -> bool:
    return _base(annotation) is type(None)
