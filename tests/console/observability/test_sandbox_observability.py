"""Logs, event rates and alerts on the real sandbox: real services, sidecars, tansu and a real Prometheus.

One sandbox for the whole package (conftest.py). The tests wait for what they expect with generous
deadlines and never sleep for a fixed time: the first scrape comes about a second after Prometheus starts,
rates need two scrapes of a counter, and the consumers see an event some 100 ms after it is published.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest
from kafka import KafkaProducer

from console import cli
from console.model.logs import LogQuery
from console.sandbox import monitoring
from console.sandbox.ports import free_port
from console.sources.health import SourceError
from console.sources.prometheus import PrometheusSource, prometheus_source
from console.sources.sandbox_logs import SandboxLogSource
from console.target import SandboxTarget
from services.platform.events import TASK_COMPLETED
from tests.utils.events import snapshot, task_event

from .conftest import ObsSandbox

pytestmark = [pytest.mark.slow, pytest.mark.broker]

T = TypeVar("T")
SERVICES = ("backend", "worker", "notification", "websocket", "audit")
RULES = sum(len(group["rules"]) for group in monitoring.alert_rules()["groups"])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not after {timeout:.0f}s (last: {last!r})")


def create_task(obs: ObsSandbox, title: str, correlation_id: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {obs.token}"}
    if correlation_id:
        headers["X-Correlation-ID"] = correlation_id
    resp = httpx.post(f"{obs.api}/tasks", json={"title": title}, headers=headers, timeout=10)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def console(capsys: pytest.CaptureFixture[str], obs: ObsSandbox, *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--sandbox", str(obs.layout.root)])
    out, err = capsys.readouterr()
    return code, out, err


def test_prometheus_scrapes_every_service_with_the_clusters_labels(obs_sandbox: ObsSandbox) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        active = httpx.get(f"{obs_sandbox.prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        return active if len(active) == len(SERVICES) + 2 and all(t["health"] == "up" for t in active) else None

    targets = wait_for("every service scraped", all_up)
    labels = {t["labels"]["job"]: t["labels"] for t in targets}
    assert set(labels) == {*SERVICES, "worker-dapr", "notification-dapr"}
    assert (labels["worker"]["namespace"], labels["worker"]["pod"], labels["worker"]["container"]) == (
        "todo-app", "worker", "app")
    assert (labels["worker-dapr"]["service"], labels["worker-dapr"]["container"]) == ("worker", "daprd")
    source = prometheus_source(SandboxTarget(obs_sandbox.layout.root))  # found through state.json
    assert source.address == obs_sandbox.prometheus
    assert source.alerts().rules == RULES  # every rule of the manifest is loaded


def test_event_rates_after_real_traffic(obs_sandbox: ObsSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    source = PrometheusSource(obs_sandbox.prometheus)

    def flowing() -> dict[str, Any] | None:
        create_task(obs_sandbox, "rates")  # a counter needs two scrapes with different values for a rate
        rates = {t.topic: t for t in source.event_rates()}
        events = rates.get("task-events")
        if events is None or not events.published_per_s:
            return None
        consumers = {r.service for r in events.consumed if r.per_s > 0}
        return rates if {"worker", "audit"} <= consumers else None

    rates = wait_for("task-events published and consumed by worker and audit", flowing, timeout=90)
    events = rates["task-events"]
    assert [r.service for r in events.published] == ["backend"]
    assert events.failed_per_s == 0
    dapr = {(r.app_id, r.direction, r.status): r.per_s for r in events.dapr}  # the daprd metrics stand-in
    assert set(dapr) == {("worker", "in", "success"), ("worker", "in", "retry")}
    # 4 per scrape, a scrape a second; a series younger than the 2 m window averages over the whole window
    assert 0 < dapr["worker", "in", "success"] <= 6
    assert dapr["worker", "in", "retry"] == pytest.approx(3 / 120)  # since daprd started, within the window
    old = {(r.app_id, r.status): r.per_s for r in rates["reminders"].dapr} if "reminders" in rates else {}
    assert old.get(("notification", "retry"), 0.0) == 0  # an hour-old daprd, newly seen: its retries are old

    history = source.event_history(300, topic="task-events")
    assert list(history) == ["task-events"]
    points = history["task-events"].published
    assert len(points) == 60
    assert {b[0] - a[0] for a, b in itertools.pairwise(points)} == {5}
    assert points[-1][0] % 5 == 0
    assert time.time() - 1 <= points[-1][0] <= time.time() + 5
    assert any(value > 0 for _, value in points)

    code, out, err = console(capsys, obs_sandbox, "events", "--topic", "task-events", "--range", "5m", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["kind"], document["version"]) == ("events", 1)
    assert document["prometheus"] == obs_sandbox.prometheus
    [topic] = document["topics"]
    assert topic["topic"] == "task-events"
    assert topic["published_per_s"] > 0
    assert {r["service"] for r in topic["consumed"]} >= {"worker", "audit"}
    assert {"app_id": "worker", "direction": "in", "status": "retry", "per_s": pytest.approx(3 / 120)} in topic["dapr"]
    assert len(topic["history"]["published"]) == 30  # --points default: one character each
    assert "backend" in document["outbox_pending"]

    code, out, _ = console(capsys, obs_sandbox, "events")
    assert code == 0
    assert out.splitlines()[0].split() == ["TOPIC", "PUBLISHED/s", "CONSUMED/s", "FAILED/s", "DAPR", "IN/s",
                                           "PUBLISHED", "(15m)"]
    assert any(line.startswith("task-events ") for line in out.splitlines())


def test_a_correlation_id_finds_the_backends_and_the_consumers_lines(
        obs_sandbox: ObsSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    cid = f"obs-{uuid.uuid4().hex[:12]}"
    started = time.time() - 1
    task = create_task(obs_sandbox, "follow me", correlation_id=cid)
    logs = SandboxLogSource(obs_sandbox.layout)

    def everyone() -> list[Any] | None:
        lines = logs.query(LogQuery(correlation_id=cid, since=started))
        return lines if {"backend", "worker", "audit"} <= {line.source for line in lines} else None

    lines = wait_for("backend, worker and audit lines with the correlation id", everyone)
    assert all(line.correlation_id == cid for line in lines)
    handled = [line for line in lines if line.msg == "event handled"]
    assert handled
    assert {line.fields["subject"] for line in handled} == {str(task["id"])}
    assert [line.ts for line in lines] == sorted(line.ts for line in lines)

    code, out, err = console(capsys, obs_sandbox, "logs", "--correlation-id", cid, "--since", "5m", "--json")
    assert code == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert {p["source"] for p in printed} >= {"backend", "worker", "audit"}
    assert all(p["correlation_id"] == cid for p in printed)

    code, out, _ = console(capsys, obs_sandbox, "logs", "worker", "-c", cid, "-n", "1")
    assert code == 0
    [line] = out.splitlines()
    assert f"correlation_id={cid}" in line
    assert line.split()[1] == "worker"


def test_follow_a_request_live(obs_sandbox: ObsSandbox) -> None:
    cid = f"live-{uuid.uuid4().hex[:12]}"
    follow = SandboxLogSource(obs_sandbox.layout).follow(LogQuery(service="worker", correlation_id=cid))
    try:
        create_task(obs_sandbox, "live", correlation_id=cid)
        line = next(follow)  # the worker handles task-events: its line for this request arrives live
    finally:
        follow.close()
    assert (line.source, line.correlation_id, line.msg) == ("worker", cid, "event handled")


def test_a_dead_lettered_events_reason_and_the_failure_rate(
        obs_sandbox: ObsSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """A completed recurring task without a due date: the worker drops it (NotPlannable), the sidecar
    sends it to task-events-dlq; its reason is found in the logs by its CloudEvent id."""
    task = snapshot(rule="FREQ=DAILY", due_at=None, status="completed")
    event = task_event("completed", task)
    assert event.type == TASK_COMPLETED
    bootstrap = obs_sandbox.state["broker"]["bootstrap"]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    sent = producer.send("task-events", key=task.id.encode(), value=event.model_dump_json().encode()).get(30)
    producer.close()

    logs = SandboxLogSource(obs_sandbox.layout)
    reason = wait_for("the dropped event's reason in the logs", lambda: logs.reason_for(event.id))
    assert reason == f"worker: event dropped: recurring task {task.id} has no due date"

    lines = logs.query(LogQuery(service="worker", event_id=event.id))
    assert "worker" in {line.source for line in lines}
    # The worker bulk-subscribes task-events: daprd's bulk DROP line names the batch entry ("0"), not the
    # event, so the sidecar's side is its dead-letter line for the record the event was sent as.
    wait_for("the worker's sidecar dead-lettering that record", lambda: [
        line for line in logs.query(LogQuery(service="worker-dapr", limit=1000))
        if line.msg == "message sent to dead letter topic" and (line.fields.get("topic"), line.fields.get(
            "partition"), line.fields.get("offset"), line.fields.get("dead_letter_topic"))
        == ("task-events", sent.partition, sent.offset, "task-events-dlq")])

    source = PrometheusSource(obs_sandbox.prometheus)
    failing = wait_for("the drop counted as a failure", lambda: [
        r for t in source.event_rates("task-events") for r in t.failed if r.per_s > 0])
    assert {(r.service, r.stage) for r in failing} == {("worker", "drop")}
    code, out, _ = console(capsys, obs_sandbox, "events", "--topic", "task-events")
    assert code == 1  # events are failing: a problem found
    assert "worker/drop" in out


def test_an_alert_from_the_real_rules_fires_and_resolves(
        obs_sandbox: ObsSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """TodoScrapeTargetDown: a service that stops answering (SIGSTOP: hung, not dead) is not scraped."""
    source = PrometheusSource(obs_sandbox.prometheus)
    pid = obs_sandbox.pid("notification")

    def scrape_alerts() -> list[Any]:
        return [a for a in source.alerts().alerts if a.name == "TodoScrapeTargetDown"]

    os.kill(pid, signal.SIGSTOP)
    try:
        [alert] = wait_for("TodoScrapeTargetDown firing", lambda: [a for a in scrape_alerts() if a.firing])
        assert alert.labels["pod"] == "notification"
        assert alert.severity == "warning"
        assert alert.summary == "Prometheus cannot scrape notification on notification"
        assert alert.active_at is not None
        assert alert.active_at <= time.time()
        code, out, _ = console(capsys, obs_sandbox, "alerts", "--json")
        assert code == 1
        document = json.loads(out)
        assert document["firing"] >= 1
        assert any(a["name"] == "TodoScrapeTargetDown" and a["state"] == "firing" for a in document["alerts"])
        code, out, _ = console(capsys, obs_sandbox, "alerts")
        assert code == 1
        assert any(line.startswith("TodoScrapeTargetDown  firing") for line in out.splitlines())
    finally:
        with contextlib.suppress(ProcessLookupError):  # restarted by the supervisor's liveness probe meanwhile
            os.kill(pid, signal.SIGCONT)
    wait_for("TodoScrapeTargetDown resolved", lambda: not scrape_alerts() or None)
    code, out, _ = console(capsys, obs_sandbox, "alerts")
    assert code == 0
    assert out.strip().endswith(f"({RULES} alert rules evaluated)")


def test_prometheus_down_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceError, match=rf"^prometheus at {url}: connection refused$"):
        PrometheusSource(url).alerts()


def test_the_rate_queries_joined_in_one_request_answer_what_each_answers_alone(obs_sandbox: ObsSandbox) -> None:
    """`event_rates` sends its six queries as one (label_replace + or): no series of any may be lost or mixed
    up with another's, which `or` would do to series whose labels were the same."""
    source = PrometheusSource(obs_sandbox.prometheus)
    names = ("published", "consumed", "failed", "dapr_in", "dapr_in_bulk", "dapr_out")

    def both() -> tuple[dict[str, list[str]], dict[str, list[str]]] | None:
        create_task(obs_sandbox, "joined")
        joined = {n: sorted(str(sorted(labels.items())) for labels, _ in found)
                  for n, found in source._instants(names, "").items()}
        alone = {n: sorted(str(sorted(labels.items())) for labels, _ in source._instant(n, "")) for n in names}
        return (joined, alone) if joined["published"] and joined["consumed"] and joined["dapr_in"] else None

    joined, alone = wait_for("published, consumed and daprd's deliveries", both, timeout=90)
    assert joined == alone
