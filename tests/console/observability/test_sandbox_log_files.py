"""The sandbox log source on log files as the sandbox writes them: read from the end, merged, filtered, followed.

The files are written with the platform's own formatters, so the lines are byte for byte what the services
and sidecars write; the running-sandbox tests (test_sandbox_observability.py) cover the real processes.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from console.model.logs import LogQuery
from console.sandbox.layout import SandboxLayout
from console.sources.health import SourceError
from console.sources.sandbox_logs import BLOCK, SandboxLogSource

T0 = 1_714_564_800.0


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}+00:00"


def service_line(ts: float, msg: str, **fields: object) -> str:
    return json.dumps({"ts": iso(ts), "level": "info", "service": "backend", "logger": "x", "msg": msg, **fields})


def sidecar_line(ts: float, msg: str, **fields: object) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
    return json.dumps({"time": stamp, "level": "warning", "msg": msg, "scope": "s", "app_id": "backend",
                       "type": "log", **fields})


@pytest.fixture
def sandbox(tmp_path: Path) -> SandboxLayout:
    layout = SandboxLayout(tmp_path / "sb")
    layout.ensure()
    # 3000 backend lines, one every second, each ~200 bytes: the file spans many read blocks
    lines = [service_line(T0 + i, "request", path=f"/api/tasks/{i}", correlation_id=f"c-{i}", pad="x" * 80)
             for i in range(3000)]
    lines.insert(1500, "Traceback (most recent call last):")  # a stray text line, as a crash before logging
    layout.log("backend").write_text("\n".join(lines) + "\n")
    layout.log("backend-dapr").write_text("\n".join([
        sidecar_line(T0 + 10.5, "DROP status returned from app while processing pub/sub event e-77"),
        sidecar_line(T0 + 2999.5, "publish failed", topic="task-events", id="e-78"),
    ]) + "\n")
    layout.log("supervisor").write_text(json.dumps({"ts": iso(T0), "level": "info", "logger": "sup",
                                                    "msg": "sandbox ready"}) + "\n")
    layout.log("prometheus").write_text(json.dumps({  # go-kit's JSON: keys sorted, `ts` last
        "caller": "main.go:1", "component": "web", "level": "info", "msg": "Server is ready", "ts": iso(T0 + 0.25),
    }) + "\n")
    assert layout.log("backend").stat().st_size > 5 * BLOCK
    return layout


def test_the_newest_lines_of_a_service_and_its_sidecar_oldest_first(sandbox: SandboxLayout) -> None:
    lines = SandboxLogSource(sandbox).query(LogQuery(service="backend", limit=3))
    assert [line.ts for line in lines] == [T0 + 2998, T0 + 2999, T0 + 2999.5]
    assert [line.source for line in lines] == ["backend", "backend", "backend-dapr"]
    assert lines[-1].event_id == "e-78"


def test_a_time_range_reads_only_its_part(sandbox: SandboxLayout) -> None:
    lines = SandboxLogSource(sandbox).query(LogQuery(service="backend", since=T0 + 100, until=T0 + 199.9, limit=0))
    assert [line.ts for line in lines if line.source == "backend"] == [T0 + i for i in range(100, 200)]


def test_ids_match_anywhere_in_the_line(sandbox: SandboxLayout) -> None:
    source = SandboxLogSource(sandbox)
    [line] = source.query(LogQuery(correlation_id="c-1234"))
    assert (line.msg, line.fields["path"], line.ts) == ("request", "/api/tasks/1234", T0 + 1234)
    [drop] = source.query(LogQuery(event_id="e-77"))
    assert drop.source == "backend-dapr"
    assert source.reason_for("e-77") == "backend-dapr: DROP status returned from app while processing pub/sub event e-77"
    assert source.reason_for("e-unknown") is None


def test_a_text_line_takes_the_time_of_the_line_after_it(sandbox: SandboxLayout) -> None:
    lines = SandboxLogSource(sandbox).query(LogQuery(service="backend", since=T0 + 1499.5, until=T0 + 1500.5))
    assert [(line.msg, line.ts) for line in lines] == [("Traceback (most recent call last):", T0 + 1500),
                                                       ("request", T0 + 1500)]


def test_without_a_service_every_log_is_searched(sandbox: SandboxLayout) -> None:
    lines = SandboxLogSource(sandbox).query(LogQuery(since=T0 - 1, until=T0 + 0.5))
    assert [line.source for line in lines] == ["backend", "supervisor", "prometheus"]
    assert (lines[2].msg, lines[2].ts, lines[2].fields["component"]) == ("Server is ready", T0 + 0.25, "web")


def test_follow_yields_matching_new_lines(sandbox: SandboxLayout) -> None:
    source = SandboxLogSource(sandbox, poll_s=0.02)
    follow = source.follow(LogQuery(service="backend", correlation_id="c-new"))

    def write() -> None:
        with open(sandbox.log("backend"), "a") as handle:
            handle.write(service_line(T0 + 5000, "request", correlation_id="c-other") + "\n")
            handle.write(service_line(T0 + 5001, "request", correlation_id="c-new") + "\n")

    threading.Timer(0.1, write).start()
    line = next(follow)
    assert (line.correlation_id, line.ts) == ("c-new", T0 + 5001)
    follow.close()


def test_a_sandbox_that_never_ran_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^sandbox logs at .*: no such directory"):
        SandboxLogSource(SandboxLayout(tmp_path / "none")).query(LogQuery())
