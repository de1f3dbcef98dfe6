"""Label and field selectors with the API server's syntax and its error for what it does not support.

Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a` (k8s.io/apimachinery/pkg/labels).
Fields: `path=value`, `path==value`, `path!=value` over the paths a resource type declares selectable;
any other path is the real server's 400 `field label not supported: <path>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.utils.kube_apiserver.resources import ResourceType

Matcher = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    """A selector the API server would reject with 400 BadRequest; the message is the server's."""


_SET_RE = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_OP_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s*$")


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b=c` -> [`a in (x,y)`, `b=c`]."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def label_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda _obj: True
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in _split(selector):
        tests.append(_label_requirement(part))

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(t(labels) for t in tests)

    return match


def _label_requirement(part: str) -> Callable[[dict[str, str]], bool]:
    if m := _SET_RE.match(part):
        if m.group(1):
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
        key, op = m.group(2), m.group(3)
        values = {v.strip() for v in m.group(4).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _OP_RE.match(part):
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value
    if m := _EXISTS_RE.match(part):
        negate, key = bool(m.group(1)), m.group(2)
        return lambda labels: (key in labels) != negate
    raise SelectorError(f"unable to parse requirement: found '{part.strip()}', expected: identifier")


def field_matcher(selector: str | None, resource: ResourceType) -> Matcher:
    if not selector:
        return lambda _obj: True
    tests: list[Matcher] = []
    for part in selector.split(","):
        m = _OP_RE.match(part)
        if not m:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{part}'")
        path, op, value = m.group(1), m.group(2), m.group(3)
        if not resource.selectable(path):
            raise SelectorError(f'"{path}" is not a known field selector: only "metadata.name", '
                                f'"metadata.namespace"' + "".join(f', "{f}"' for f in sorted(resource.fields)))
        tests.append(_field_test(path, op, value))
    return lambda obj: all(t(obj) for t in tests)


def _field_test(path: str, op: str, value: str) -> Matcher:
    keys = path.split(".")

    def read(obj: dict[str, Any]) -> str:
        node: Any = obj
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if path == "source" and node is None:  # events: `source` selects on source.component
            node = (obj.get("source") or {}).get("component")
        return "" if node is None else str(node).lower() if isinstance(node, bool) else str(node)

    if op == "!=":
        return lambda obj: read(obj) != value
    return lambda obj: read(obj) == value
