"""Kubernetes Events (core/v1) as the console shows them: grouped by the object they are about.

A pod's "recent events" and a Deployment's scaling history both come from Events whose
`involvedObject` names them. Newer components write `eventTime` and `series` instead of
`firstTimestamp`/`lastTimestamp`/`count`; both spellings are read so old and new events sort together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from console.model.conditions import parse_time


@dataclass(frozen=True, slots=True)
class EventSummary:
    type: str  # Normal | Warning
    reason: str
    message: str
    count: int
    first_seen: float | None
    last_seen: float | None
    source: str
    object_kind: str
    object_name: str

    @property
    def warning(self) -> bool:
        return self.type == "Warning"


def event_summary(event: Mapping[str, Any]) -> EventSummary:
    involved = event.get("involvedObject") or {}
    series = event.get("series") or {}
    first = parse_time(event.get("firstTimestamp")) or parse_time(event.get("eventTime"))
    last = (parse_time(series.get("lastObservedTime")) or parse_time(event.get("lastTimestamp"))
            or parse_time(event.get("eventTime")) or first)
    source = event.get("source") or {}
    return EventSummary(
        type=str(event.get("type") or "Normal"), reason=str(event.get("reason") or ""),
        message=str(event.get("message") or "").strip(),
        count=int(series.get("count") or event.get("count") or 1), first_seen=first, last_seen=last,
        source=str(source.get("component") or event.get("reportingComponent") or ""),
        object_kind=str(involved.get("kind") or ""), object_name=str(involved.get("name") or ""),
    )


def events_by_object(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[EventSummary]]:
    """(kind, name) -> its events, newest first; one pass, so 1,000 pods cost one grouping, not 1,000 scans."""
    grouped: dict[tuple[str, str], list[EventSummary]] = {}
    for raw in events:
        summary = event_summary(raw)
        grouped.setdefault((summary.object_kind, summary.object_name), []).append(summary)
    for items in grouped.values():
        items.sort(key=lambda e: e.last_seen or 0.0, reverse=True)
    return grouped
