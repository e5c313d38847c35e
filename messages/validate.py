"""Validators compiled from type hints: each checks one wire value and names the path on failure.

Supported hints are the CBOR-native ones: int, float, str, bytes, bool, None, ``X | None``,
``list[X]`` and ``dict[str, X]``, plus ``CborValue`` for free-form native values.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

from .errors import MessageError

Validator = Callable[[Any, str], Any]
"""Checks a decoded wire value at a path; returns the (possibly converted) value or raises."""

CborValue = typing.Union[None, bool, int, float, str, bytes, list[Any], dict[str, Any]]  # noqa: UP007
"""Any CBOR-native value, nested lists and string-keyed maps included."""

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
MAX_NESTING = 32


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _fail(expected: str, value: Any, path: str) -> typing.NoReturn:
    raise MessageError(f"expected {expected}, got {_describe(value)}", path=path)


def _check_int(value: Any, path: str) -> int:
    if type(value) is not int:
        _fail("int", value, path)
    if not INT_MIN <= value <= INT_MAX:
        raise MessageError(f"integer {value} does not fit in 64 bits", path=path)
    return value


def _check_float(value: Any, path: str) -> float:
    if type(value) is float:
        return value
    if type(value) is int and abs(value) <= 2**53:
        return float(value)
    _fail("float", value, path)


def _check_str(value: Any, path: str) -> str:
    if type(value) is not str:
        _fail("str", value, path)
    return value


def _check_bytes(value: Any, path: str) -> bytes:
    if type(value) is not bytes:
        _fail("bytes", value, path)
    return value


def _check_bool(value: Any, path: str) -> bool:
    if type(value) is not bool:
        _fail("bool", value, path)
    return value


def _check_none(value: Any, path: str) -> None:
    if value is not None:
        _fail("null", value, path)


def _check_native(value: Any, path: str, depth: int = 0) -> Any:
    if depth > MAX_NESTING:
        raise MessageError(f"nested deeper than {MAX_NESTING} levels", path=path)
    kind = type(value)
    if value is None or kind in (bool, str, bytes, float):
        return value
    if kind is int:
        return _check_int(value, path)
    if kind is list:
        return [_check_native(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if kind is dict:
        for k in value:
            if type(k) is not str:
                raise MessageError(f"map keys must be str, got {_describe(k)}", path=path)
        return {k: _check_native(v, f"{path}.{k}", depth + 1) for k, v in value.items()}
    _fail("a CBOR-native value", value, path)


_SCALARS: dict[Any, Validator] = {
    int: _check_int,
    float: _check_float,
    str: _check_str,
    bytes: _check_bytes,
    bool: _check_bool,
    type(None): _check_none,
}


def _list_validator(item: Validator) -> Validator:
    def check(value: Any, path: str) -> list[Any]:
        if type(value) is not list:
            _fail("list", value, path)
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return check


def _dict_validator(item: Validator) -> Validator:
    def check(value: Any, path: str) -> dict[str, Any]:
        if type(value) is not dict:
            _fail("map", value, path)
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise MessageError(f"map keys must be str, got {_describe(k)}", path=path)
            out[k] = item(v, f"{path}.{k}")
        return out

    return check


def _optional_validator(inner: Validator) -> Validator:
    def check(value: Any, path: str) -> Any:
        return None if value is None else inner(value, path)

    return check


def compile_validator(hint: Any) -> Validator:
    """Build the validator for a field's type hint; unsupported hints fail at import time."""
    if hint == CborValue:
        return _check_native
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is list and len(args) == 1:
        return _list_validator(compile_validator(args[0]))
    if origin is dict and len(args) == 2 and args[0] is str:
        return _dict_validator(compile_validator(args[1]))
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return _optional_validator(compile_validator(rest[0]))
    raise TypeError(f"unsupported message field type {hint!r}: use CBOR-native types")
