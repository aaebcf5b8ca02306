"""Strict types for what is read back from a file: one line per mistake.

The dataclasses that files are read into (spec.yaml, cluster.yaml, experiment files)
declare their field types; `check_fields` holds YAML values to them before the
dataclass is built, so `num_cpus: "4"` or `local_mode: "no"` is refused with a line
that names the file and the field instead of a traceback or a silent wrong value. A
bool is not a number here, and an int is a float.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from launcher.errors import UserError


def _describe(kind) -> str:
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false",
             type(None): "empty (null)", dict: "a mapping", list: "a list"}
    if dataclasses.is_dataclass(kind):
        return "a mapping"
    return names.get(typing.get_origin(kind) or kind, getattr(kind, "__name__", str(kind)))


def matches(value: Any, kind) -> bool:
    """Whether a YAML value fits a declared field type."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, k) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str)
    if origin is dict or kind is dict:
        args = typing.get_args(kind)
        return isinstance(value, dict) and (not args or all(
            matches(k, args[0]) and matches(v, args[1]) for k, v in value.items()))
    if origin is list or kind is list:
        args = typing.get_args(kind)
        return isinstance(value, list) and (not args or all(matches(v, args[0]) for v in value))
    if dataclasses.is_dataclass(kind):
        return isinstance(value, dict)
    return isinstance(value, kind)


def check_fields(cls, data: dict[str, Any], where: str) -> None:
    """Every key of `data` is a field of dataclass `cls` and holds a value of its type."""
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        kind = hints.get(key)
        if kind is not None and not matches(value, kind):
            raise UserError(f"{where}: {key} must be {_describe(kind)}, got {value!r}")
