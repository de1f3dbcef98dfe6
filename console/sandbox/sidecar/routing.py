"""A small subset of CEL for Subscription `routes.rules[].match`.

daprd evaluates full CEL over the CloudEvent (`event.type == "x" && event.data.kind != 'y'`).
Rules in this project only compare event fields with literals, so we support `==`/`!=` between a
dotted `event.` path and a string/number/bool literal, joined by `&&`/`||` (no parentheses);
anything else is refused at match time with a warning and treated as "no match".
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

_CMP = re.compile(r"^\s*(event(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*(==|!=)\s*(.+?)\s*$")


def _literal(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return json.loads(text)  # numbers, true, false, null


def _lookup(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split(".")[1:]:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _comparison(expr: str, event: dict[str, Any]) -> bool:
    if expr.strip() == "true":
        return True
    found = _CMP.match(expr)
    if not found:
        raise ValueError(f"unsupported CEL expression {expr!r}")
    value, expected = _lookup(event, found.group(1)), _literal(found.group(3))
    return (value == expected) if found.group(2) == "==" else (value != expected)


def matches(expression: str, event: dict[str, Any]) -> bool:
    """True when the rule matches; unsupported expressions never match (and say so in the log)."""
    try:
        return any(all(_comparison(part, event) for part in clause.split("&&"))
                   for clause in expression.split("||"))
    except (ValueError, json.JSONDecodeError) as exc:
        log.warning("cannot evaluate route rule", extra={"match": expression, "error": str(exc)})
        return False
