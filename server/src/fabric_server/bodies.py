"""The base of every JSON request body: numbers and booleans are taken only as themselves."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, Strict

_SCALARS = (int, float, bool)


class RequestBody(BaseModel):
    """A request body whose integer, number and boolean fields refuse strings ("5", "true")
    and, for integers, booleans and fractions, as the published schema says: a client that
    sends the wrong type learns it from a 400 instead of having it silently converted. Other
    fields (dates, enums, ids) still parse from their JSON strings. A number field accepts an
    integer."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        changed = False
        for field in cls.model_fields.values():
            if any(isinstance(item, Strict) for item in field.metadata):
                continue
            if field.annotation in _SCALARS:
                field.metadata.append(Strict())
                changed = True
            elif _is_scalar(field.annotation):  # optional: strict on each member
                field.annotation = _strict_members(field.annotation)
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


def _strict_members(annotation: Any) -> Any:
    members = tuple(
        member if _is_none(member) else Annotated[member, Strict()]
        for member in typing.get_args(annotation)
    )
    return typing.Union[members]


def _is_none(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        return _is_none(typing.get_args(annotation)[0])
    return annotation is type(None)
