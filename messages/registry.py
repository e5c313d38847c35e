"""Registry of message classes by versioned wire tag.

``@message("reading.batch.v1")`` on a frozen dataclass registers it. A tag is registered once:
a duplicate is a programming error caught at import time.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from .validate import Validator, compile_validator

TAG_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.v[1-9][0-9]*$")

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """How one field of a message is read from the wire."""

    name: str
    validate: Validator
    required: bool


@dataclasses.dataclass(frozen=True, slots=True)
class MessageSpec:
    """A registered message class and the validators of its fields."""

    tag: str
    cls: type[Any]
    fields: tuple[FieldSpec, ...]


_BY_TAG: dict[str, MessageSpec] = {}
_BY_CLASS: dict[type[Any], MessageSpec] = {}


def message(tag: str) -> Callable[[type[T]], type[T]]:
    """Register a frozen, slotted, keyword-only dataclass under a versioned wire tag."""
    if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
        raise ValueError(f"message tag {tag!r} must look like 'kind.name.v1'")

    def register(cls: type[T]) -> type[T]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"@message({tag!r}) must decorate a dataclass, got {cls!r}")
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        if not params.frozen or not hasattr(cls, "__slots__"):
            raise TypeError(f"@message({tag!r}): {cls.__name__} must be frozen=True, slots=True")
        if tag in _BY_TAG:
            raise ValueError(f"message tag {tag!r} is already registered by {_BY_TAG[tag].cls.__name__}")
        hints = typing.get_type_hints(cls)
        specs = []
        for f in dataclasses.fields(cls):
            if f.name == "t":
                raise TypeError(f"{cls.__name__}: the field name 't' is reserved for the wire tag")
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            specs.append(FieldSpec(f.name, compile_validator(hints[f.name]), required))
        spec = MessageSpec(tag, cls, tuple(specs))
        _BY_TAG[tag] = spec
        _BY_CLASS[cls] = spec
        return cls

    return register


def spec_for_tag(tag: str) -> MessageSpec | None:
    """The registered spec for a wire tag, or None."""
    return _BY_TAG.get(tag)


def spec_for_class(cls: type[Any]) -> MessageSpec | None:
    """The registered spec for a message class, or None."""
    return _BY_CLASS.get(cls)


def registered_tags() -> list[str]:
    """Every registered tag, sorted."""
    return sorted(_BY_TAG)
