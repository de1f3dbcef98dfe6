"""Status conditions and API timestamps, read the same way for every kind.

Kubernetes, Strimzi, KEDA and cert-manager all report health as a list of `{type, status, reason,
message, lastTransitionTime}` conditions and write times as RFC 3339 strings. The rules elsewhere in
`console.model` compare times and look conditions up by type, so both are parsed once, here, into plain
values (epoch seconds, frozen dataclasses) that JSON and tables can show as they are.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Condition:
    """One status condition; `status` stays the API's string ("True", "False", "Unknown")."""

    type: str
    status: str
    reason: str | None
    message: str | None
    last_transition: float | None
    last_update: float | None = None

    @property
    def true(self) -> bool:
        return self.status == "True"

    @property
    def false(self) -> bool:
        return self.status == "False"


def parse_time(value: object) -> float | None:
    """An API timestamp (`2025-01-02T03:04:05Z`, with or without fractions or an offset) as epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    return _parse_time(value)


@functools.lru_cache(maxsize=8192)
def _parse_time(value: str) -> float | None:
    """Cached: a cluster's objects share few distinct timestamps (a rollout stamps hundreds of pods alike),
    and parsing them dominated building 1,000 pod summaries."""
    text = value.replace("Z", "+00:00") if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_time(epoch: float) -> str:
    """Epoch seconds as the API writes them (RFC 3339, UTC, whole seconds)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions_of(obj: Mapping[str, Any]) -> tuple[Condition, ...]:
    """The `status.conditions` of any object, in the order the controller wrote them."""
    raw = ((obj.get("status") or {}).get("conditions")) or []
    return tuple(condition(c) for c in raw if isinstance(c, Mapping) and c.get("type"))


def condition(raw: Mapping[str, Any]) -> Condition:
    return Condition(
        type=str(raw.get("type")), status=str(raw.get("status", "Unknown")),
        reason=raw.get("reason") or None, message=raw.get("message") or None,
        last_transition=parse_time(raw.get("lastTransitionTime")),
        last_update=parse_time(raw.get("lastUpdateTime")),
    )


def find(conditions: Iterable[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def age(since: float | None, now: float) -> str:
    """kubectl's short age: 45s, 12m, 3h, 5d (or `-` when unknown)."""
    if since is None:
        return "-"
    seconds = max(0, int(now - since))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
