"""Structured JSON logs, one object per line: the one formatter every process of the project uses.

The services' lines (Loki, FR-G06, and `todo-console logs` parse them, so the field names are a
contract) are `ts`, `level`, `service`, `logger`, `msg`, `correlation_id`, `traceparent`, then
whatever a call passes in `extra=`; an exception becomes an `exc` field instead of a multi-line
traceback. The sandbox's supervisor and its dev sidecar use the same `JsonLineFormatter` with their
own leading fields (the sidecar mimics daprd's `time`/`level`/`msg`/`scope`/`app_id`).

Every service line carries a correlation id: the request's, the event's being handled or published,
or, for the process's own work outside any (start-up, migrations, shutdown, uvicorn's server
lines), the process's id `process-<hex>` (see `correlation.current`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from services.platform import correlation

# Attributes every LogRecord has; anything else on a record came from `extra=` (uvicorn's
# `color_message` is its `msg` with terminal colours: not for a JSON line).
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message"}


def utc_timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2026-12-01T08:00:00.123Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: `fields(record)` first, then the record's `extra=` fields, then
    the exception (`exception_field`, rendered by `exception`). Subclasses choose the leading fields."""

    exception_field = "exc"

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return {"ts": utc_timestamp(record), "level": record.levelname.lower(), "logger": record.name,
                "msg": record.getMessage()}

    def exception(self, record: logging.LogRecord) -> str:
        return self.formatException(record.exc_info) if record.exc_info else ""

    def format(self, record: logging.LogRecord) -> str:
        entry = self.fields(record)
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry[self.exception_field] = self.exception(record)
        return json.dumps(entry, default=str)


class JsonFormatter(JsonLineFormatter):
    """A service's lines: its name, and the correlation of the work the line is about."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        ctx = correlation.current()
        return {"ts": utc_timestamp(record), "level": record.levelname.lower(), "service": self.service,
                "logger": record.name, "msg": record.getMessage(), "correlation_id": ctx.correlation_id,
                "traceparent": ctx.traceparent}


def configure_logging(service: str, level: str = "info") -> None:
    """Route all logging (ours, uvicorn's, the SDK's) through one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Access lines duplicate our own request log, which carries the correlation id; httpx
    # would log every readiness probe of the sidecar.
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
