"""OCI's wire contract, read from the SDK's own models (generated from Oracle's API specs).

Each SDK model class lists its properties (`swagger_types`), their JSON names (`attribute_map`), which are
required (the `**[Required]**` in their docstrings), the allowed values of enums (request models raise
on anything else), and how a polymorphic body picks its subtype (`get_subtype`). The stand-in validates
every request body with these, and checks every answer it builds against the response model, so it can
drift from OCI only where the SDK itself would.
"""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime
from functools import cache
from types import ModuleType
from typing import Any

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(str, (.+)\)$")


def _package(cls: type) -> ModuleType:
    return importlib.import_module(cls.__module__.rsplit(".", 1)[0])


@cache
def required(cls: type) -> frozenset[str]:
    """Python names of the properties the model's documentation marks **[Required]**."""
    instance = cls()
    return frozenset(attr for attr in instance.swagger_types
                     if "**[Required]**" in (getattr(cls, attr).__doc__ or ""))


def _subtype(cls: type, data: dict[str, Any]) -> type:
    picker = getattr(cls, "get_subtype", None)
    if picker is None:
        return cls
    return getattr(_package(cls), picker(data), cls)


def validate(data: Any, cls: type, path: str = "") -> list[str]:
    """Every way `data` (parsed JSON) is not a valid `cls`: unknown or missing properties, wrong types,
    enum values the model does not allow."""
    where = path or "body"
    if not isinstance(data, dict):
        return [f"{where}: expected an object"]
    cls = _subtype(cls, data)
    instance = cls()
    by_json = {json_name: attr for attr, json_name in instance.attribute_map.items()}
    errors: list[str] = []
    for key, value in data.items():
        attr = by_json.get(key)
        if attr is None:
            errors.append(f"{path}{key}: unknown property of {cls.__name__}")
            continue
        if value is None:
            continue
        found = _check(value, instance.swagger_types[attr], cls, f"{path}{key}")
        if not found and instance.swagger_types[attr] == "str":
            try:
                setattr(instance, attr, value)  # request models' enum setters refuse unknown values
            except ValueError as exc:
                found.append(f"{path}{key}: {exc}")
            if getattr(instance, attr) == "UNKNOWN_ENUM_VALUE" and value != "UNKNOWN_ENUM_VALUE":
                found.append(f"{path}{key}: {value!r} is not one of {cls.__name__}'s allowed values")
        errors += found
    for attr in required(cls):
        if data.get(instance.attribute_map[attr]) is None:
            errors.append(f"{path}{instance.attribute_map[attr]}: required by {cls.__name__}")
    return errors


def _check(value: Any, swagger_type: str, owner: type, path: str) -> list[str]:
    if match := _LIST.match(swagger_type):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [e for i, item in enumerate(value) for e in _check(item, match.group(1), owner, f"{path}[{i}]")]
    if match := _DICT.match(swagger_type):
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        return [e for key, item in value.items() for e in _check(item, match.group(1), owner, f"{path}.{key}")]
    simple: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}
    if swagger_type in simple:
        ok = isinstance(value, simple[swagger_type]) and (swagger_type == "bool" or not isinstance(value, bool))
        return [] if ok else [f"{path}: expected {swagger_type}, got {type(value).__name__}"]
    if swagger_type in ("datetime", "date"):
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return [f"{path}: not an ISO 8601 {swagger_type}"]
        return []
    if swagger_type == "object":
        return []
    model = getattr(_package(owner), swagger_type, None)
    if model is None:
        return [f"{path}: the stand-in does not know the SDK type {swagger_type}"]
    return validate(value, model, f"{path}.")


def wire(cls: type, **values: Any) -> dict[str, Any]:
    """A JSON object for `cls` from Python property names (a misspelt one raises), None values left out."""
    names = cls().attribute_map
    return {names[attr]: value for attr, value in values.items() if value is not None}


def check_answer(data: Any, cls: type) -> None:
    """The stand-in's own answers must be valid instances of the response model: a bug here is loud."""
    items = data if isinstance(data, list) else [data]
    for item in items:
        errors = validate(item, cls)
        if errors:
            raise AssertionError(f"stand-in answer is not a valid {cls.__name__}: {'; '.join(errors)}")


def timestamp(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
