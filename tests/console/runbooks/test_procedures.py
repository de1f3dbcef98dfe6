"""The runbooks' library code on its own: the drill's checks and figures, the bootstrap's checks, the smoke
test's log evidence, the cluster target, and the broker freeze on a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from console.manifests.bootstrap import Step
from console.runbooks.procedures import ProcedureError, bootstrap, outage, provision_oke, smoke
from console.runbooks.procedures.freeze import BrokerFreeze, command_line, process_state
from console.runbooks.procedures.system import Endpoints, System, cluster_system
from console.runbooks.procedures.updates import UpdateListener
from console.sandbox.layout import SandboxLayout
from console.sources.sandbox_logs import SandboxLogSource
from console.target import SandboxTarget

T0 = 1_796_000_000.0


def _system() -> System:
    endpoints = Endpoints("http://127.0.0.1:1/api", "http://127.0.0.1:2/api/audit", "ws://127.0.0.1:3/ws")
    return System("sandbox /tmp/x", endpoints, "token", "drill-user", SandboxTarget(Path("/tmp/x")))


def _write(at: float, action: str, task: str, cid: str, status: int = 201, seconds: float = 0.02) -> outage.Write:
    return outage.Write(T0 + at, seconds, action, task, cid, status, None if status < 300 else f"{status}: down")


def _run(writes: list[outage.Write], pending: list[tuple[float, float | None]]) -> outage.DrillRun:
    timeline = outage.Timeline(started=T0, frozen=T0 + 2, thawed=T0 + 6, stopped=T0 + 8)
    return outage.DrillRun(_system(), False, timeline, writes, [(T0 + t, v) for t, v in pending], True, {},
                           UpdateListener("ws://127.0.0.1:3/ws", "token"))


WRITES = [_write(1, "created", "t1", "c1"), _write(3, "updated", "t1", "c2"), _write(5, "completed", "t1", "c3"),
          _write(7, "deleted", "t1", "c4", seconds=0.3)]


def test_the_drill_expects_one_audit_entry_per_write_and_topic() -> None:
    run = _run([*WRITES, _write(7.5, "created", None, "c5", status=503)], [])  # type: ignore[arg-type]
    expected = outage.expected_entries(run)
    assert sorted(expected) == sorted((c, t) for c in ("c1", "c2", "c3", "c4") for t in ("task-events", "task-updates"))
    assert set(expected.values()) == {1}
    answered = outage.api_kept_answering(run)
    assert not answered.ok
    assert answered.detail.startswith("1 of 5 writes failed; first: created at ")
    assert outage.api_kept_answering(_run(WRITES, [])).detail == "4 writes answered 2xx, 2 of them during the outage"


def test_the_outbox_check_reads_the_gauge_from_the_freeze_on() -> None:
    # The relay sets the gauge after each batch it tries: during a freeze it may still read 0.
    assert outage.outbox_held_events(_run(WRITES, [(1, 0), (3, 0), (7, 40), (9, 0)])).detail == "up to 40 events waited"
    stayed = outage.outbox_held_events(_run(WRITES, [(1, 0), (3, 0), (7, 0)]))
    assert (stayed.ok, stayed.detail) == (False, "the outbox stayed empty: the outage was not felt by the backend")
    relay_off = outage.outbox_held_events(_run(WRITES, [(1, None), (3, None)]))
    assert not relay_off.ok
    assert "is its outbox relay running?" in relay_off.detail


def test_in_flight_rises_with_answered_writes_and_falls_with_audit_entries() -> None:
    run = _run(WRITES[:2], [])
    run.audit = [{"recorded_at": "2026-11-30T00:00:00+00:00"}]
    recorded = outage._unix("2026-11-30T00:00:00+00:00")
    times, values = outage.in_flight(run)
    steps = sorted([(T0 + 1.02, 2), (T0 + 3.02, 2), (recorded, -1)])
    level, want = 0, []
    for _, change in steps:
        level += change
        want.append(level)
    assert times == [t for t, _ in steps]
    assert values == want


def test_latency_percentiles_and_the_figures() -> None:
    writes = [_write(i / 10, "created", f"t{i}", f"c{i}", seconds=(i + 1) / 1000) for i in range(100)]
    assert outage.latency_ms(writes) == {"p50": pytest.approx(50.5), "p99": pytest.approx(99.0),
                                         "max": pytest.approx(100.0)}
    assert outage.latency_ms([]) == {"p50": None, "p99": None, "max": None}
    figures = outage.figures(_run(writes, [(3, 12), (5, None)]))
    assert figures["writes"] == (100, "")
    assert figures["writes during the outage"] == (40, "")
    assert figures["outage"] == (4.0, "s")
    assert figures["outbox peak"] == (12, "events")
    assert figures["write rate"][0] == pytest.approx(12.5)


def test_the_plot_shades_the_outage() -> None:
    run = _run(WRITES, [(1, 0), (7, 40), (9, 0)])
    figure = outage.plot(run)
    top, bottom = figure.axes
    span = top.patches[0].get_extents()  # the broker-frozen band, in display units: compare in data units
    left, right = top.transData.inverted().transform([(span.x0, 0), (span.x1, 0)])[:, 0]
    assert (round(left, 1), round(right, 1)) == (2.0, 6.0)
    assert [line.get_label() for line in bottom.lines] == ["written, not yet in the audit log",
                                                           "outbox pending (backend gauge)"]


def test_the_smoke_test_finds_the_workers_line_by_correlation_id(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path)
    layout.logs.mkdir()
    written = smoke.Written("t1", "created", "smoke-created-abc", time.time())
    line = {"ts": "2026-11-30T06:15:14.191Z", "level": "info", "service": "worker", "msg": "event handled",
            "topic": "task-events", "event_type": "todo.task.created.v1", "correlation_id": "smoke-created-abc"}
    line["ts"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(written.at + 0.25)) + ".000Z"
    other = {**line, "topic": "reminders"}
    (tmp_path / "logs" / "worker.log").write_text(json.dumps(other) + "\n")
    missing = smoke.worker_handled(SandboxLogSource(layout), written, timeout_s=0.3)
    assert not missing.ok
    assert "no `event handled` line with correlation id smoke-created-abc" in missing.detail
    with open(tmp_path / "logs" / "worker.log", "a") as log:
        log.write(json.dumps(line) + "\n")
    found = smoke.worker_handled(SandboxLogSource(layout), written, timeout_s=5)
    assert found.ok
    assert found.seconds is not None
    assert found.seconds < 1.5


def test_a_cluster_is_reached_through_its_public_url_with_a_token_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    token = jwt.encode({"sub": "alice"}, "not checked here, only decoded: 32 bytes", algorithm="HS256")
    monkeypatch.setenv("TODO_TOKEN", token)
    system = cluster_system("https://todo.example.com/", "TODO_TOKEN")
    assert system.endpoints == Endpoints("https://todo.example.com/api", "https://todo.example.com/api/audit",
                                         "wss://todo.example.com/ws")
    assert (system.user, system.token, system.sandbox) == ("alice", token, None)
    with pytest.raises(ProcedureError, match="set the environment variable TODO_NOPE"):
        cluster_system("https://todo.example.com", "TODO_NOPE")
    with pytest.raises(ProcedureError, match="is not an http"):
        cluster_system("todo.example.com", "TODO_TOKEN")


@pytest.fixture(scope="module")
def prod_steps() -> list[Step]:
    return bootstrap.planned_steps("prod")


def test_the_bootstrap_plan_is_checked_against_versions_env(prod_steps: list[Step]) -> None:
    assert bootstrap.order_outcome(prod_steps, "prod").ok
    assert bootstrap.secrets_outcome(prod_steps).ok
    installs = [s for s in prod_steps if bootstrap.phase(s) == "operator"]
    assert [r[1] for r in bootstrap.step_rows(installs)] == ["operator"] * 10

    def tampered(change) -> list[Step]:
        return [Step(s.number, change(s.argv)) if bootstrap.phase(s) == "operator" else s for s in prod_steps]

    older = tampered(lambda a: tuple("1.17.0" if x == "1.18.3" else x for x in a))
    assert bootstrap.order_outcome(older, "prod").detail == "dapr at 1.17.0, pinned 1.18.3"
    unwaited = tampered(lambda a: tuple(x for x in a if x != "--wait"))
    assert "metrics-server is not waited for" in bootstrap.order_outcome(unwaited, "prod").detail
    swapped = list(prod_steps)
    first, second = (i for i, s in enumerate(swapped) if bootstrap.phase(s) == "operator" and s.argv[3] in ("keda", "dapr"))
    swapped[first], swapped[second] = swapped[second], swapped[first]
    assert "is not versions.env's" in bootstrap.order_outcome(swapped, "prod").detail
    leak = [Step(1, ("kubectl", "create", "secret", "generic", "x", "--from-file=token=hunter2"))]
    assert bootstrap.secrets_outcome(leak).detail == "steps [1] print a value"


def test_apply_is_refused_like_the_cli_refuses_it() -> None:
    from provisioning.plan import Plan
    from provisioning.preflight import Finding, PreflightReport

    empty = Plan("todo", ())
    refused = PreflightReport([Finding(True, "vcn-count fits"), Finding(False, "vcn/nat-gateway-count is 0")])
    outcome = provision_oke.apply(None, empty, refused)  # type: ignore[arg-type]
    assert (outcome.ok, outcome.detail) == (False, "not applied: the preflight failed, nothing was created")
    assert provision_oke.preflight_outcome(refused).detail == "1 of 2 checks failed: vcn/nat-gateway-count is 0"
    assert provision_oke.apply(None, empty, None).detail == "nothing to change"  # type: ignore[arg-type]


def test_helm_list_is_compared_with_the_pinned_releases() -> None:
    listed = [{"name": r.name, "namespace": r.namespace, "revision": "1", "updated": "2026-11-30 06:15:36 +0000 UTC",
               "status": "deployed", "chart": f"{r.chart}-{r.version}", "app_version": r.version}
              for r in bootstrap.pinned_releases("dev")]
    assert bootstrap.releases_outcome(listed, "dev").detail == "9 releases deployed"
    listed[0]["status"] = "failed"
    listed[1]["chart"] = "kube-prometheus-stack-80.0.0"
    del listed[-1]
    detail = bootstrap.releases_outcome(listed, "dev").detail
    assert detail == ("metrics-server is failed; kube-prometheus-stack runs kube-prometheus-stack-80.0.0, pinned "
                      "kube-prometheus-stack-88.5.3; fluent-bit is not installed in monitoring")


def test_a_frozen_process_is_thawed_by_the_watchdog_when_nobody_thaws_it() -> None:
    marker = "runbook-freeze-test-sleeper"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(120)", marker])
    deadline = time.monotonic() + 30
    while marker not in command_line(sleeper.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # /proc/<pid>/cmdline is empty until the child has exec'd
    try:
        with pytest.raises(ProcedureError, match="is not the broker"):
            BrokerFreeze(sleeper.pid)
        freeze = BrokerFreeze(sleeper.pid, expected_command=marker)
        freeze.freeze(max_s=1.0)  # the runbook "dies" here: it never calls thaw()
        assert process_state(sleeper.pid) == "T"
        deadline = time.monotonic() + 30
        while process_state(sleeper.pid) == "T" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process_state(sleeper.pid) in ("S", "R"), "the watchdog thawed it"
        again = BrokerFreeze(sleeper.pid, expected_command=marker)
        again.freeze(max_s=60)
        again.thaw()
        assert process_state(sleeper.pid) in ("S", "R")
        assert again._watchdog is not None
        assert again._watchdog.poll() is not None, "the watchdog is gone"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert process_state(os.getpid()) in ("R", "S")
