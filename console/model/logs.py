"""Log lines as the console sees them, whichever store they came from (Loki, or the sandbox's files).

Every process of the platform writes one JSON object per line: the services `ts, level, service, logger, msg,
correlation_id, ...` (services/platform/logs.py), daprd and the dev sidecar `time, level, msg, scope,
app_id, ...` (`--log-as-json`). In the cluster Fluent Bit ships them to Loki (the same object, plus a
`kubernetes` map); in the sandbox they sit in `<sandbox>/logs/<name>.log`. Both sources turn a line into
one `LogLine` here, answer the same `LogQuery`, and find a dead letter's failure reason with the same rule
(`failure_reason`), so the CLI, the dashboard and the dead-letter triage never care where logs live.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

SIDECAR_SUFFIX = "-dapr"
# Keys a log line's envelope uses, or that LogLine has its own attribute for; the rest are its `fields`.
_ENVELOPE = frozenset({"ts", "time", "level", "msg", "service", "app_id", "logger", "scope", "type",
                       "kubernetes", "stream", "log", "_p", "instance", "ver", "correlation_id", "event_id"})


@dataclass(frozen=True)
class LogQuery:
    """What to look for. `correlation_id` and `event_id` match lines that contain them (LogQL's `|=`): a
    service logs them as fields, daprd only inside its message, and both must be found.

    `service` is an app-id (its sidecar's lines come with it) or, on the sandbox, any log name
    (`backend-dapr`, `supervisor`, ...). Times are unix seconds; `limit` keeps the newest lines.
    """

    service: str | None = None
    correlation_id: str | None = None
    event_id: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100

    @property
    def needles(self) -> tuple[str, ...]:
        return tuple(n for n in (self.correlation_id, self.event_id) if n)

    def matches_text(self, line: str) -> bool:
        return all(needle in line for needle in self.needles)


@dataclass(frozen=True)
class LogLine:
    """One line of one process. `source` names the process as the sandbox names its logs: the app-id for
    the service container, `<app-id>-dapr` for its sidecar; `labels` says where it came from (Loki's stream
    labels, or the sandbox log file)."""

    ts: float
    source: str
    service: str | None
    level: str | None
    msg: str
    correlation_id: str | None
    event_id: str | None
    fields: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    @property
    def is_sidecar(self) -> bool:
        return self.source.endswith(SIDECAR_SUFFIX)

    @property
    def time_iso(self) -> str:
        return datetime.fromtimestamp(self.ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def to_dict(self) -> dict[str, Any]:
        """The `logs --json` shape (console/README.md): one object per line, JSON Lines."""
        return {"ts": round(self.ts, 6), "time": self.time_iso, "source": self.source, "service": self.service,
                "level": self.level, "msg": self.msg, "correlation_id": self.correlation_id,
                "event_id": self.event_id, "fields": self.fields, "labels": self.labels}


class LogSource(Protocol):
    """What the console asks of a log store. `address` names it in errors (`SourceError`)."""

    @property
    def address(self) -> str: ...

    def query(self, query: LogQuery) -> list[LogLine]:
        """The newest `query.limit` matching lines in the time range, oldest first."""
        ...

    def follow(self, query: LogQuery) -> Generator[LogLine, None, None]:
        """Matching lines as they are written from now on (`since`/`until`/`limit` do not apply)."""
        ...

    def reason_for(self, event_id: str) -> str | None:
        """Why the event with this CloudEvent id failed, from the logs (the Kafka source's `FailureReasons`)."""
        ...


def parse_line(raw: str, *, source: str, ts: float | None = None,
               labels: Mapping[str, str] | None = None) -> LogLine | None:
    """A `LogLine` from one line of text; None when it has no time at all (no `ts` given and none inside).

    A line that is not JSON (a crash before logging was configured, a broker's own text) is kept as its
    message, so nothing an operator might need disappears.
    """
    text = raw.rstrip("\n")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    when = ts if ts is not None else parse_time(data.get("ts") or data.get("time"))
    if when is None:
        return None
    service = data.get("service") or data.get("app_id") or _service_of(source)
    fields = {k: v for k, v in data.items() if k not in _ENVELOPE}
    event_id = data.get("event_id")
    if not event_id and source.endswith(SIDECAR_SUFFIX):
        event_id = fields.pop("id", None)  # the sidecar's (and daprd's) name for the CloudEvent id
    return LogLine(
        ts=when,
        source=source,
        service=str(service) if service else None,
        level=str(data["level"]).lower() if data.get("level") else None,
        msg=str(data.get("msg", data.get("log", text))),  # `log`: Fluent Bit's field for a line it could not merge
        correlation_id=_str_or_none(data.get("correlation_id")),
        event_id=_str_or_none(event_id),
        fields=fields,
        labels=dict(labels or {}),
        raw=text,
    )


def failure_reason(lines: Sequence[LogLine]) -> str | None:
    """The failure reason of one event from the lines that mention it, or None when none says why.

    The app's own words win: a consumer logs `event dropped` / `event failed; asking for redelivery` with
    the handler's `error` (services/platform/consumer.py), which says what was wrong with the event. Only
    when the app said nothing (it crashed, timed out, was unreachable) does the sidecar's delivery error
    (daprd's "retriable error returned from app ...") explain it. The latest such line is the one that sent
    the event to the dead-letter topic.
    """
    failures = [line for line in sorted(lines, key=lambda line: line.ts) if _is_failure(line)]
    for sidecar in (False, True):
        own = [line for line in failures if line.is_sidecar == sidecar]
        if own:
            return _reason_text(own[-1])
    return None


def _is_failure(line: LogLine) -> bool:
    return line.level in ("warning", "warn", "error", "fatal", "critical")


def _reason_text(line: LogLine) -> str:
    error = line.fields.get("error") or line.fields.get("exc")
    detail = str(error).strip().splitlines()[-1] if error else ""
    text = f"{line.msg}: {detail}" if detail and detail not in line.msg else line.msg
    return f"{line.source}: {text}"


def parse_time(value: Any) -> float | None:
    """Unix seconds from a log line's `ts`/`time` (ISO 8601, `Z` or an offset; naive means UTC) or a number."""
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _service_of(source: str) -> str | None:
    return source.removesuffix(SIDECAR_SUFFIX) or None


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
