"""Correlation ids: taken from the request, carried into logs, and well-formed; every line has one."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.backend.main import build_app
from services.platform import correlation
from services.platform.logs import JsonFormatter, JsonLineFormatter
from tests.services.backend.conftest import make_settings
from tests.utils.waiting import wait_until

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


def lines(formatter: logging.Formatter, *emit: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.lines")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for msg, extra in emit:
            logger.info(msg, extra=extra)
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_work_outside_any_request_carries_the_process_id() -> None:
    first, second = lines(JsonFormatter("svc"), ("starting", {}), ("stopped", {}))
    assert first["correlation_id"].startswith("process-")
    assert second["correlation_id"] == first["correlation_id"]
    assert list(first)[:7] == ["ts", "level", "service", "logger", "msg", "correlation_id", "traceparent"]
    assert first["ts"].endswith("Z")


def test_the_plain_layout_has_no_service_fields() -> None:
    [line] = lines(JsonLineFormatter(), ("supervised", {"child": "backend"}))
    assert list(line) == ["ts", "level", "logger", "msg", "child"]


def served_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_every_backend_line_carries_a_correlation_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Start-up (migrations included) and shutdown lines carry the process's id, a request's lines its id."""
    app = build_app(make_settings(f"sqlite:///{tmp_path / 'b.db'}"))
    with TestClient(app) as client:
        refused = client.get("/api/tasks", headers={"X-Correlation-ID": "req-1", "Authorization": "Bearer forged"})
        assert refused.status_code == 401
    logged = served_lines(capsys)
    assert {"starting", "database schema migrated", "request", "token refused", "stopped"} <= {
        line["msg"] for line in logged}
    assert all(line.get("correlation_id") for line in logged)
    own = {line["correlation_id"] for line in logged if line["msg"] in ("starting", "database schema migrated",
                                                                         "stopped")}
    assert own == {correlation.PROCESS.correlation_id}
    assert {line["correlation_id"] for line in logged if line["msg"] in ("request", "token refused")} == {"req-1"}


def test_the_relay_logs_a_failing_publish_in_the_events_correlation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No sidecar here: the relay's first publish fails, and says so in the id of the request that wrote it."""
    settings = make_settings(f"sqlite:///{tmp_path / 'b.db'}", relay_enabled=True, relay_poll_interval_s=0.1)
    logged: list[dict[str, Any]] = []
    with TestClient(build_app(settings)) as client:
        token = client.post("/api/dev/token", params={"user": "alice"}).json()["access_token"]
        created = client.post("/api/tasks", json={"title": "x"},
                              headers={"Authorization": f"Bearer {token}", "X-Correlation-ID": "req-relay"})
        assert created.status_code == 201

        def failing() -> list[dict[str, Any]]:
            logged.extend(served_lines(capsys))
            return [line for line in logged if line["msg"] == "outbox publish failing; events wait in the outbox"]

        [warning] = wait_until(failing, 20, 0.05, "the relay's warning")
    assert warning["correlation_id"] == "req-relay"
    assert warning["level"] == "warning"
    assert warning["topic"] == "task-events"
