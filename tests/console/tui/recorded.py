"""A recorded system for the dashboard's snapshot tests and benchmarks: the model's own dataclasses as the
sources would have returned them at a fixed moment, put into a real Hub with `Hub.replay` (lag through
`Hub.replay_lag`, so the history, Burrow's verdicts and KEDA's decisions are computed by the real engine
from recorded offsets). Nothing here talks to a source; everything is the same on every run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from console.live.hub import Hub, LogsView, WorkloadsView, make_hub
from console.model.alerts import Alert, AlertReport
from console.model.dlq import DeadLetter, DlqSummary
from console.model.event_rates import EventsReport, ServiceRate, TopicHistory, TopicRates
from console.model.kafka import GroupOffsets, KafkaRecord, LagSnapshot, PartitionOffsets, TopicPartition
from console.model.kube_events import EventSummary
from console.model.logs import LogLine, LogQuery
from console.model.platform import PlatformReport
from console.model.rollout import Revision, RolloutState
from console.model.wiring import KafkaTrigger, ScaledObjectInfo, SubscriptionInfo, Wiring
from console.target import SandboxTarget
from console.tui.actions import LetterRow
from tests.console.live.states import NOW, certificate, condition, container, pod, rollout, topic

SERVICES = ("audit", "backend", "notification", "websocket", "worker")


def subscription(app: str, topic_name: str) -> SubscriptionInfo:
    return SubscriptionInfo(f"{app}-{topic_name}", "todo-app", app, "kafka-pubsub", topic_name,
                            f"/events/{topic_name}", f"{topic_name}-dlq", False)


WIRING = Wiring(
    subscriptions=(subscription("worker", "task-events"), subscription("audit", "task-events"),
                   subscription("audit", "task-updates"), subscription("websocket", "task-updates"),
                   subscription("notification", "reminders")),
    scaled_objects=(ScaledObjectInfo("worker", "todo-app", "worker", 1, 3, (
        KafkaTrigger("worker", "task-events", 50, 0, False, False),)),),
)


def workloads() -> WorkloadsView:
    crash = container("waiting", "CrashLoopBackOff", NOW - 300, restarts=7)
    rollouts = (*tuple(rollout(name) for name in SERVICES if name not in ("notification", "worker")), rollout("notification", RolloutState.FAILED, message='deployment "notification" exceeded its progress ' 'deadline', ready=0, conditions=(condition("Progressing", "False", "ProgressDeadlineExceeded", NOW - 420),)), rollout("worker", RolloutState.PROGRESSING, desired=3, ready=2, message='Waiting for deployment "worker" rollout to finish: 2 of 3 updated replicas are available...', conditions=(condition("Progressing", "True", "ReplicaSetUpdated", NOW - 40), condition("Available", "True", "MinimumReplicasAvailable", NOW - 86400))))
    pods = (*tuple(pod(f"{name}-7d9c5b-x{i}", name, containers=(container(restarts=0),)) for i, name in enumerate(SERVICES) if name != "notification"), pod("notification-5f6d8-kq2", "notification", status="CrashLoopBackOff", problem="CrashLoopBackOff: app", restarts=7, last_restart_at=NOW - 95, containers=(crash,)))
    pulled = EventSummary("Normal", "Pulled", 'Container image "todo-worker:0.1.1" already present', 1, NOW - 30,
                          NOW - 30, "kubelet", "Pod", "worker")
    pods = tuple(p if p.service != "worker" else replace(p, events=(pulled,)) for p in pods)
    resources = (topic("task-events"), topic("task-updates"), topic("reminders", ready=False,
                 message="Topic reminders: partition count cannot be decreased"), certificate(4.5))
    return WorkloadsView(rollouts, pods, PlatformReport(resources, (("Component", "forbidden: cannot list"),)))


def lag_snapshots(count: int = 12, interval: float = 2.0) -> list[LagSnapshot]:
    """The worker falls behind on task-events[1] (its commit stops), audit keeps up, a `reporting` group
    committed once long ago and stopped."""
    snapshots = []
    tps = [TopicPartition("task-events", p) for p in range(3)] + [TopicPartition("task-updates", p) for p in range(3)]
    for i in range(count):
        at = NOW - (count - 1 - i) * interval
        ends = {tp: 100 + 3 * i + tp.partition for tp in tps}
        partitions = {tp: PartitionOffsets(0, end) for tp, end in ends.items()}
        worker = {tp: (ends[tp] if tp.partition != 1 else 100) for tp in tps if tp.topic == "task-events"}
        audit = {tp: ends[tp] for tp in tps}
        reporting = {TopicPartition("task-events", 0): 40}
        times = {(tp, off): at - 5.0 * (ends[tp] - off) for g in (worker, reporting) for tp, off in g.items()}
        snapshots.append(LagSnapshot(at, partitions, {
            "worker": GroupOffsets("worker", "Stable", 3, worker),
            "audit": GroupOffsets("audit", "Stable", 1, audit),
            "reporting": GroupOffsets("reporting", "Empty", 0, reporting),
        }, times))
    return snapshots


def dead_letters() -> tuple[DlqSummary, ...]:
    def summary(name: str, apps: tuple[str, ...], waiting: int, oldest: float | None) -> DlqSummary:
        subs = tuple(s for s in WIRING.subscriptions if s.dead_letter_topic == name and s.app_id in apps)
        return DlqSummary(name, subs, 1, waiting + 2, waiting, waiting, 2, waiting, oldest, oldest, True)
    return (summary("task-events-dlq", ("worker", "audit"), 2, NOW - 310),
            summary("task-updates-dlq", ("audit", "websocket"), 0, None),
            summary("reminders-dlq", ("notification",), 0, None))


def alerts() -> AlertReport:
    return AlertReport((
        Alert("TodoConsumerLagHigh", "firing", {"alertname": "TodoConsumerLagHigh", "severity": "warning",
                                                "consumergroup": "worker"},
              {"summary": "worker is 30 messages behind on task-events"}, NOW - 180, 30.0, "todo-kafka", 120.0),
        Alert("TodoScrapeTargetDown", "pending", {"alertname": "TodoScrapeTargetDown", "severity": "warning"},
              {"summary": "Prometheus cannot scrape notification on notification"}, NOW - 20, 0.0, "todo-workloads",
              300.0),
    ), rules=8)


def events() -> EventsReport:
    def series(base: float, step: float) -> tuple[tuple[float, float], ...]:
        return tuple((NOW - (29 - i) * 30, max(0.0, base + step * ((i * 7) % 5 - 2))) for i in range(30))
    topics = (
        TopicRates("task-events", (ServiceRate("backend", 1.5),), (ServiceRate("audit", 1.5), ServiceRate("worker", 1.1)),
                   (ServiceRate("worker", 0.02, "drop"),)),
        TopicRates("task-updates", (ServiceRate("backend", 1.5),), (ServiceRate("audit", 1.5),
                                                                     ServiceRate("websocket", 1.5))),
        TopicRates("reminders", (), ()),
    )
    history = {t.topic: TopicHistory(t.topic, series(t.published_per_s, 0.3), series(t.consumed_per_s, 0.3),
                                     series(t.failed_per_s, 0.01)) for t in topics}
    return EventsReport("2m", topics, history, {"backend": 0.0})


def logs(query: LogQuery) -> LogsView:
    lines = []
    entries: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
            ("backend", "info", "request", {"method": "POST", "path": "/api/tasks", "status": 201}),
            ("worker", "info", "event handled", {"topic": "task-events"}),
            ("worker", "warning", "event dropped", {"topic": "task-events", "error": "recurring task has no due date"}),
            ("worker-dapr", "warning", "DROP status returned from app while processing pub/sub event", {}),
            ("audit", "info", "event handled", {"topic": "task-events"}))
    for i, (source, level, msg, fields) in enumerate(entries):
        lines.append(LogLine(NOW - 60 + i, source, source.removesuffix("-dapr"), level, msg, "demo-3",
                             "0ac9a3a7-79b2-4def-b2ba-5f5cc7b5b0cd", fields, {}, ""))
    return LogsView(query, tuple(lines))


def recorded_hub(root: Path | None = None) -> Hub:
    """A hub holding the recorded system, every area fresh at NOW."""
    hub = make_hub(SandboxTarget(root or Path("/srv/sandbox")))
    hub.replay("workloads", workloads(), at=NOW, address="sandbox")
    hub.replay("wiring", WIRING, at=NOW, address="kustomize/overlays/prod")
    for snapshot in lag_snapshots():
        hub.replay_lag(snapshot, WIRING)
    hub.replay("dead_letters", dead_letters(), at=NOW, address="127.0.0.1:9092")
    hub.replay("alerts", alerts(), at=NOW, address="http://127.0.0.1:9090")
    hub.replay("events", events(), at=NOW, address="http://127.0.0.1:9090")
    hub.replay("logs", logs(hub.log_query), at=NOW, address="/srv/sandbox/logs")
    return hub


def letter_rows() -> list[LetterRow]:
    """The two dead letters of task-events-dlq: one event, dropped by the worker and by audit."""
    event = {"specversion": "1.0", "id": "7f3c9a1e-5b2d-4c8e-9f61-2a7d0e4b8c15", "source": "backend",
             "type": "todo.task.completed.v1", "subject": "task-42", "datacontenttype": "application/json",
             "time": "2027-01-15T07:54:50Z", "data": {"action": "completed", "entity_id": "task-42"}}
    rows = []
    for offset, app in enumerate(("worker", "audit")):
        at = NOW - 310 + offset
        headers = (("partitionKey", b"task-42"), ("x-correlation-id", b"c0ffee-42"),
                   ("x-dlq-original-topic", b"task-events"), ("x-dlq-original-partition", b"1"),
                   ("x-dlq-original-offset", b"7"), ("x-dlq-app-id", app.encode()), ("x-dlq-reason", b"dropped"),
                   ("x-dlq-attempts", b"1"), ("x-dlq-error", b"DROP status returned from app"),
                   ("x-dlq-time", str(int(at * 1000)).encode()), ("x-dlq-status", b"200"))
        record = KafkaRecord("task-events-dlq", 0, offset, at, b"task-42", json.dumps(event).encode(), headers)
        letter = DeadLetter(record)
        rows.append(LetterRow(letter, letter.header_reason, "waiting", None))
    return rows


def revisions() -> list[Revision]:
    return [Revision(1, "worker-tbc8xgr67t", ("iad.ocir.io/t/todo/todo-worker:0.0.8",), "ci: deploy 0.0.8 (a1b2c3d)",
                     NOW - 86400, 0, 0, False, None, ()),
            Revision(2, "worker-pmxp67hhw6", ("iad.ocir.io/t/todo/todo-worker:0.1.0",), "ci: deploy 0.1.0 (e4f5a6b)",
                     NOW - 7200, 1, 1, False, None, ()),
            Revision(3, "worker-62lldwpwks", ("iad.ocir.io/t/todo/todo-worker:0.1.1",), "ci: deploy 0.1.1 (c0ffee1)",
                     NOW - 40, 2, 2, True, None, ())]
