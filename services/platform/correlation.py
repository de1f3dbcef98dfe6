"""Correlation ids and W3C trace context, carried through one request or one event.

A request's id comes from `X-Correlation-ID`, else from the trace id inside a W3C
`traceparent`, else it is generated. It lives in a context variable so every log line,
every published event and every Dapr call made while handling that request carries it
without threading it through function arguments (asyncio.to_thread copies the context).
An event's handler and the outbox relay bind the event's own. Work outside any request or
event (start-up, migrations, shutdown) is the process's own: it carries the process's id,
`process-<hex>`, one per process, so one search finds a replica's whole lifecycle.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

CORRELATION_HEADER = "x-correlation-id"
TRACEPARENT_HEADER = "traceparent"
_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_MAX_ID_LENGTH = 128
_SAFE_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]+$")
# Where the request middleware also leaves the request's context, in its ASGI scope: Starlette
# answers an unhandled error outside every middleware, once the context variable is reset.
SCOPE_KEY = "todo.trace_context"


@dataclass(frozen=True)
class TraceContext:
    """What one unit of work is known by: our correlation id and the W3C trace context."""

    correlation_id: str
    traceparent: str


_current: ContextVar[TraceContext | None] = ContextVar("trace_context", default=None)


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid version-00 traceparent, else None."""
    if not value:
        return None
    match = _TRACEPARENT_RE.match(value.strip().lower())
    if not match or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return match.group(1), match.group(2), match.group(3)


def new_traceparent(trace_id: str | None = None, flags: str = "01") -> str:
    """A traceparent with a fresh span id (we are a new hop in the trace)."""
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-{flags}"


PROCESS = TraceContext(f"process-{uuid.uuid4().hex}", new_traceparent())
"""The context of the process's own work (start-up, migrations, shutdown), the same all its life."""


def from_headers(correlation_id: str | None, traceparent: str | None) -> TraceContext:
    """Build the context for incoming work; ids a client sends are kept only if well-formed."""
    parsed = parse_traceparent(traceparent)
    outgoing = new_traceparent(parsed[0], parsed[2]) if parsed else new_traceparent()
    if correlation_id and len(correlation_id) <= _MAX_ID_LENGTH and _SAFE_ID_RE.match(correlation_id):
        cid = correlation_id
    elif parsed:
        cid = parsed[0]
    else:
        cid = uuid.uuid4().hex
    return TraceContext(cid, outgoing)


def of_request(scope: Mapping[str, Any]) -> TraceContext:
    """The context the request middleware bound for this request (see `SCOPE_KEY`), else the current one."""
    ctx = scope.get(SCOPE_KEY)
    return ctx if isinstance(ctx, TraceContext) else current()


def current() -> TraceContext:
    """The context of the work in progress: the request's or the event's, else the process's own."""
    return _current.get() or PROCESS


def bind(ctx: TraceContext) -> object:
    """Make ctx current; returns the token to pass to `reset`."""
    return _current.set(ctx)


def reset(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def outgoing_headers() -> dict[str, str]:
    """Headers (also gRPC metadata keys) that carry the current context to the next hop."""
    ctx = current()
    return {CORRELATION_HEADER: ctx.correlation_id, TRACEPARENT_HEADER: ctx.traceparent}
