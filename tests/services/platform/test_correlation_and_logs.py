"""Correlation ids: taken from the request, carried into logs, and well-formed."""

from __future__ import annotations

import io
import json
import logging

from services.platform import correlation
from services.platform.logs import JsonFormatter

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_correlation_header_wins_then_trace_id_then_generated() -> None:
    ctx = correlation.from_headers("abc-123", f"00-{TRACE}-00f067aa0ba902b7-01")
    assert ctx.correlation_id == "abc-123"
    assert correlation.parse_traceparent(ctx.traceparent)[0] == TRACE  # type: ignore[index]
    assert ctx.traceparent.split("-")[2] != "00f067aa0ba902b7"  # we are a new span
    assert correlation.from_headers(None, f"00-{TRACE}-00f067aa0ba902b7-01").correlation_id == TRACE
    generated = correlation.from_headers(None, None)
    assert len(generated.correlation_id) == 32
    assert correlation.parse_traceparent(generated.traceparent)


def test_malformed_ids_from_clients_are_not_trusted() -> None:
    for bad in ("x" * 200, "has space", "new\nline", ""):
        assert correlation.from_headers(bad, None).correlation_id != bad
    bad_traceparents: tuple[str | None, ...] = (
        "01-" + TRACE + "-00f067aa0ba902b7-01", f"00-{'0' * 32}-00f067aa0ba902b7-01", "00-xyz", None)
    for bad_traceparent in bad_traceparents:
        assert correlation.parse_traceparent(bad_traceparent) is None


def test_log_lines_are_json_with_the_current_correlation_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("svc"))
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    token = correlation.bind(correlation.from_headers("corr-1", None))
    try:
        logger.info("hello %s", "world", extra={"task_id": "t1"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
    finally:
        correlation.reset(token)
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "hello world"
    assert first["service"] == "svc"
    assert first["level"] == "info"
    assert first["correlation_id"] == "corr-1"
    assert first["task_id"] == "t1"
    assert second["level"] == "error"
    assert "RuntimeError: boom" in second["exc"]
