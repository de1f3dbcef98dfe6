"""The findings rules and the overview on crafted states: one rule per test, healthy parts left at their defaults."""

from __future__ import annotations

from dataclasses import replace

from console.live.findings import (
    STALLED_AFTER_S,
    alert_findings,
    dead_letter_findings,
    judge,
    lag_findings,
    platform_findings,
    pod_findings,
    rollout_findings,
    source_findings,
)
from console.live.overview import lag_line, overview, platform_lines
from console.model.alerts import Alert, AlertReport
from console.model.dlq import DlqSummary
from console.model.findings import Severity
from console.model.kafka import TopicPartition
from console.model.keda import KedaPartition, scaling_decision
from console.model.lag import GroupStatus, PartitionStatus
from console.model.platform import PlatformReport
from console.model.rollout import RolloutState
from console.model.wiring import KafkaTrigger, ScaledObjectInfo, SubscriptionInfo

from .states import (
    NOW,
    certificate,
    condition,
    container,
    group,
    lag_view,
    partition,
    pod,
    rollout,
    slot,
    snapshot,
    topic,
)


def test_a_healthy_system_has_no_findings_and_is_not_a_problem() -> None:
    state = snapshot(rollouts=(rollout("worker"), rollout("backend")),
                     pods=(pod("worker-abc-1", "worker"), pod("backend-abc-1", "backend")),
                     resources=(topic("task-events"), certificate(60.0)),
                     lag=lag_view(group("worker", GroupStatus.OK, partition("worker", PartitionStatus.OK, 0, 0.0))))
    assert judge(state) == []
    summary = overview(state)
    assert (summary.problem, summary.to_dict()["healthy"], summary.to_dict()["worst"]) == (False, True, None)


# --- rollouts ---------------------------------------------------------------------------------------------


def test_a_failed_rollout_is_an_error_since_its_deadline_passed_with_its_failing_pod() -> None:
    failed = rollout("notification", RolloutState.FAILED, message='deployment "notification" exceeded its progress '
                     "deadline", conditions=(condition("Progressing", "False", "ProgressDeadlineExceeded", NOW - 60),))
    pods = (pod("notification-old-1", "notification", created_at=NOW - 86400),
            pod("notification-new-1", "notification", status="ImagePullBackOff", created_at=NOW - 700,
                problem="app: ImagePullBackOff, 0 restarts"))
    (finding,) = rollout_findings([failed], pods, NOW)
    assert (finding.severity, finding.area, finding.subject, finding.since) == (
        Severity.ERROR, "rollouts", "notification", NOW - 60)
    assert finding.message == ('deployment "notification" exceeded its progress deadline '
                               "(notification-new-1: app: ImagePullBackOff, 0 restarts)")
    assert finding.hint == "todo-console rollout history notification; todo-console rollout undo notification"


def test_a_degraded_rollout_is_an_error_since_it_lost_availability() -> None:
    degraded = rollout("backend", RolloutState.DEGRADED, ready=0, conditions=(
        condition("Available", "False", "MinimumReplicasUnavailable", NOW - 300),
        condition("Progressing", "True", "NewReplicaSetAvailable", NOW - 7200)))
    (finding,) = rollout_findings([degraded], (), NOW)
    assert (finding.severity, finding.since, finding.hint) == (
        Severity.ERROR, NOW - 300, "todo-console pods --service backend --describe")


def test_a_rollout_whose_new_pods_cannot_start_is_stalled_at_once() -> None:
    moving = rollout("worker", RolloutState.PROGRESSING, conditions=(
        condition("Progressing", "True", "ReplicaSetUpdated", NOW - 7200, updated=NOW - 20),))
    pods = (pod("worker-old-1", "worker", created_at=NOW - 86400),
            pod("worker-new-1", "worker", status="ImagePullBackOff", created_at=NOW - 20,
                problem="app: ImagePullBackOff, 0 restarts"))
    (finding,) = rollout_findings([moving], pods, NOW)
    assert finding.severity is Severity.ERROR
    assert finding.message == ('rollout of "worker" stalled: new pods cannot start (worker-new-1: app: '
                               "ImagePullBackOff, 0 restarts); it fails its progress deadline in 9m40s")
    assert finding.since == NOW - 20


def test_a_rollout_without_progress_for_two_minutes_is_stalled_and_a_moving_one_is_not() -> None:
    quiet = rollout("worker", RolloutState.PROGRESSING, conditions=(
        condition("Progressing", "True", "ReplicaSetUpdated", NOW - 7200, updated=NOW - STALLED_AFTER_S - 60),))
    (finding,) = rollout_findings([quiet], (pod("worker-1", "worker"),), NOW)
    assert (finding.severity, finding.message) == (
        Severity.WARN, 'rollout of "worker" stalled: no progress for 3m; it fails its progress deadline in 7m00s')
    moving = replace(quiet, conditions=(condition("Progressing", "True", "ReplicaSetUpdated", NOW - 7200,
                                                  updated=NOW - 30),))
    assert rollout_findings([moving], (pod("worker-1", "worker"),), NOW) == []


def test_old_pods_failing_while_a_rollout_replaces_them_do_not_stall_it() -> None:
    moving = rollout("backend", RolloutState.PROGRESSING, conditions=(
        condition("Progressing", "True", "ReplicaSetUpdated", NOW - 7200, updated=NOW - 10),))
    pods = (pod("backend-old-1", "backend", status="CrashLoopBackOff", created_at=NOW - 3600,
                problem="app: CrashLoopBackOff"), pod("backend-new-1", "backend", created_at=NOW - 10))
    assert rollout_findings([moving], pods, NOW) == []
    assert [f.area for f in pod_findings(pods, NOW)] == ["pods"]  # the old pod is still a finding of its own


def test_a_paused_rollout_is_information() -> None:
    (finding,) = rollout_findings([rollout("audit", RolloutState.PAUSED)], (), NOW)
    assert (finding.severity, finding.hint) == (Severity.INFO, "kubectl rollout resume deployment/audit")


# --- pods -----------------------------------------------------------------------------------------------------


def test_crash_looping_pods_are_one_error_per_service_since_the_first_trouble() -> None:
    looping = [pod(f"backend-abc-{i}", "backend", status="CrashLoopBackOff", restarts=4, last_restart_at=NOW - 30 * i,
                   problem="app: CrashLoopBackOff, last exit 1 (Error), 4 restarts",
                   containers=(container("waiting", "CrashLoopBackOff", since=NOW - 20 * i, restarts=4),))
               for i in (1, 2)]
    (finding,) = pod_findings([*looping, pod("backend-abc-3", "backend")], NOW)
    assert (finding.severity, finding.subject) == (Severity.ERROR, "backend")
    assert finding.message == ("2 of 3 pods CrashLoopBackOff: backend-abc-1: app: CrashLoopBackOff, last exit 1 "
                               "(Error), 4 restarts")
    assert finding.since == NOW - 60
    assert finding.hint == "todo-console pods backend-abc-1; todo-console logs backend --since 15m"


def test_restarts_in_the_last_fifteen_minutes_are_a_warning_older_ones_are_not() -> None:
    (finding,) = pod_findings([pod("worker-1", "worker", restarts=2, last_restart_at=NOW - 125)], NOW)
    assert (finding.severity, finding.message, finding.since) == (
        Severity.WARN, "worker-1 restarted 2 times, the last 2m ago", NOW - 125)
    assert pod_findings([pod("worker-1", "worker", restarts=2, last_restart_at=NOW - 3600)], NOW) == []


# --- platform ---------------------------------------------------------------------------------------------------


def test_a_resource_not_ready_is_an_error_and_an_expiring_certificate_a_warning_since_its_renewal() -> None:
    report = PlatformReport((topic("task-events", ready=False, message="KafkaError: replication factor"),
                             certificate(4.5, renewal_time=NOW - 20 * 86400), topic("reminders")))
    not_ready, expiring = platform_findings(report, NOW)
    assert (not_ready.severity, not_ready.subject, not_ready.message, not_ready.since) == (
        Severity.ERROR, "KafkaTopic/task-events", "NotReady: KafkaError: replication factor", NOW - 600)
    assert not_ready.hint == "todo-console resources --kind kafkatopic"
    assert (expiring.severity, expiring.subject, expiring.since) == (
        Severity.WARN, "Certificate/todo-tls", NOW - 20 * 86400)
    assert expiring.message == "Expiring: expires in 4.5 days"


def test_an_expired_certificate_is_an_error_and_an_unreadable_kind_a_warning() -> None:
    report = PlatformReport((certificate(-1.0),), unreadable=(("Certificate", "Kubernetes API at x: forbidden"),))
    expired, unreadable = platform_findings(report, NOW)
    assert expired.severity is Severity.ERROR
    assert (unreadable.severity, unreadable.subject, unreadable.message) == (
        Severity.WARN, "Certificate", "cannot be read: Kubernetes API at x: forbidden")


# --- Kafka ------------------------------------------------------------------------------------------------------


def _keda_for_worker(lag: int) -> object:
    trigger = KafkaTrigger("worker", "task-events", lag_threshold=50, activation_lag_threshold=0,
                           allow_idle_consumers=False, limit_to_partitions_with_lag=False,
                           offset_reset_policy="earliest")
    so = ScaledObjectInfo("worker", "todo-app", "worker", 1, 3, (trigger,))
    return scaling_decision(so, lambda t: [KedaPartition(TopicPartition("task-events", 0), 10, 10 + lag)])


def test_a_group_in_err_is_an_error_with_how_far_behind_and_what_keda_does() -> None:
    stopped = group("worker", GroupStatus.ERR,
                    partition("worker", PartitionStatus.STOP, 120, 300.0, reason="no commit in the whole window"),
                    partition("worker", PartitionStatus.OK, 0, 0.0, p=1))
    (finding,) = lag_findings(lag_view(stopped, keda={"worker": _keda_for_worker(120)}), NOW)
    assert (finding.severity, finding.subject, finding.since) == (Severity.ERROR, "worker", NOW - 300.0)
    assert finding.message == ("ERR: 120 messages behind, the oldest unconsumed 5m old; task-events[0]: STOP no "
                               "commit in the whole window; KEDA asks for 1 replica (active)")  # capped: 1 partition
    assert str(finding.hint).startswith("todo-console lag worker")


def test_warn_is_a_warning_and_ok_unknown_say_nothing_but_an_unreadable_group_is_an_error() -> None:
    slow = group("audit", GroupStatus.WARN, partition("audit", PartitionStatus.WARN, 40, 20.0))
    fine = group("websocket", GroupStatus.OK, partition("websocket", PartitionStatus.OK, 3, 1.0))
    young = group("notification", GroupStatus.UNKNOWN, partition("notification", PartitionStatus.UNKNOWN, 5, 2.0))
    broken = group("reporting", GroupStatus.ERR, error="GROUP_AUTHORIZATION_FAILED")
    found = {f.subject: f for f in lag_findings(lag_view(slow, fine, young, broken), NOW)}
    assert set(found) == {"audit", "reporting"}
    assert found["audit"].severity is Severity.WARN
    assert (found["reporting"].severity, found["reporting"].message) == (
        Severity.ERROR, "offsets cannot be read: GROUP_AUTHORIZATION_FAILED")


def test_dead_letters_waiting_are_a_warning_since_the_oldest() -> None:
    subs = (SubscriptionInfo("worker-task-events", "todo-app", "worker", "kafka-pubsub", "task-events", "/e", "task-events-dlq", False),
            SubscriptionInfo("audit-task-events", "todo-app", "audit", "kafka-pubsub", "task-events", "/e", "task-events-dlq", False))
    waiting = DlqSummary("task-events-dlq", subs, 1, 4, 3, 2, 1, 4, NOW - 106, NOW - 10, True)
    settled = DlqSummary("reminders-dlq", (), 1, 2, 0, 0, 0, 0, None, NOW - 4000, True)
    (finding,) = dead_letter_findings([waiting, settled], NOW)
    assert (finding.severity, finding.subject, finding.since) == (Severity.WARN, "task-events-dlq", NOW - 106)
    assert finding.message == "2 dead letters waiting (from task-events; apps audit, worker), the oldest for 1m"
    assert finding.hint == "todo-console dlq show task-events-dlq"


# --- alerts -------------------------------------------------------------------------------------------------------


def _alert(name: str, state: str, severity: str, **annotations: str) -> Alert:
    return Alert(name, state, {"alertname": name, "severity": severity}, {"summary": f"{name} says so", **annotations},
                 NOW - 90, 1.0)


def test_alerts_by_their_severity_pending_as_information_and_no_rules_as_a_warning() -> None:
    report = AlertReport((_alert("TodoApiDown", "firing", "critical", runbook_url="https://runbooks/api-down"),
                          _alert("TodoSlow", "firing", "warning"), _alert("TodoSoon", "pending", "warning")), rules=8)
    down, slow, soon = alert_findings(report)
    assert (down.severity, down.message, down.since, down.hint) == (
        Severity.ERROR, "firing: TodoApiDown says so", NOW - 90, "https://runbooks/api-down")
    assert (slow.severity, slow.hint) == (Severity.WARN, "todo-console alerts")
    assert (soon.severity, soon.message) == (Severity.INFO, "pending (about to fire): TodoSoon says so")
    (empty,) = alert_findings(AlertReport((), rules=0))
    assert (empty.severity, empty.subject) == (Severity.WARN, "rules")


# --- the sources ----------------------------------------------------------------------------------------------------


def test_a_source_down_is_one_warning_naming_every_area_it_blinds() -> None:
    error = "kafka at 127.0.0.1:9092: no broker answers"
    areas = [slot("lag", None, error=error, failing_since=NOW - 40),
             slot("dead_letters", (), error=error, updated_at=NOW - 75, failing_since=NOW - 50),
             slot("alerts", None, source="prometheus", address="http://prom", absent="this sandbox runs no Prometheus"),
             slot("logs", (), source="loki")]
    kafka, prometheus = sorted(source_findings(areas, NOW, sandbox=False), key=lambda f: f.severity, reverse=True)
    assert (kafka.severity, kafka.subject, kafka.since) == (Severity.WARN, "kafka", NOW - 50)
    assert kafka.message == (f"{error} (consumer lag and dead letters stale; showing what it said 1m ago)")
    assert str(kafka.hint).startswith("todo-console resources --kind kafka")
    assert (prometheus.severity, prometheus.message) == (
        Severity.INFO, "alerts not checked: this sandbox runs no Prometheus")


def test_judge_orders_worst_first_and_the_overview_counts_the_problem() -> None:
    state = snapshot(
        rollouts=(rollout("backend", RolloutState.DEGRADED, ready=0),),
        pods=(pod("worker-1", "worker", restarts=1, last_restart_at=NOW - 60),),
        resources=(certificate(60.0),),
        lag=lag_view(group("worker", GroupStatus.OK, partition("worker", PartitionStatus.OK, 0, 0.0))),
        alerts=slot("alerts", None, source="prometheus", address="http://prom", error="prometheus at http://prom: down"))
    found = judge(state)
    assert [(f.severity, f.area) for f in found] == [
        (Severity.ERROR, "rollouts"), (Severity.WARN, "pods"), (Severity.WARN, "sources")]
    summary = overview(state)
    assert (summary.problem, summary.worst) == (True, Severity.ERROR)
    document = summary.to_dict()
    assert (document["healthy"], document["worst"]) == (False, "error")
    assert [s["name"] for s in document["services"]] == ["backend"]
    assert [(s["name"], s["state"]) for s in document["sources"]] == [
        ("workloads", "ok"), ("lag", "ok"), ("alerts", "down")]


# --- the overview's lines -------------------------------------------------------------------------------------------


def test_services_carry_their_pods_restarts_and_their_version() -> None:
    state = snapshot(rollouts=(rollout("worker", image="iad.ocir.io/t/todo/todo-worker:0.1.0"),),
                     pods=(pod("worker-1", "worker", restarts=2), pod("worker-2", "worker", restarts=1)))
    (line,) = overview(state).services or ()
    assert (line.name, line.ready, line.desired, line.restarts, line.version) == ("worker", 1, 1, 3, "0.1.0")


def test_platform_lines_count_ready_per_kind_and_name_the_soonest_expiry_and_problems() -> None:
    lines = platform_lines(PlatformReport((topic("a"), topic("b", ready=False), certificate(4.5)),
                                          unreadable=(("ScaledObject", "forbidden"),)))
    assert [(line.area, line.ok, line.summary) for line in lines] == [
        ("kafka", False, "KafkaTopic 1/2 ready; problem: KafkaTopic/b NotReady"),
        ("keda", None, "cannot read ScaledObject"),
        ("certificates", False, "Certificate 1/1 ready; todo-tls expires in 4.5 days; problem: Certificate/todo-tls "
                                "Expiring"),
    ]


def test_the_worst_lag_is_the_worst_status_else_the_most_behind_else_none() -> None:
    behind = group("audit", GroupStatus.OK, partition("audit", PartitionStatus.OK, 30, 12.0, eta_s=6.0))
    more_behind = group("websocket", GroupStatus.UNKNOWN, partition("websocket", PartitionStatus.UNKNOWN, 10, 40.0))
    stopped = group("worker", GroupStatus.ERR, partition("worker", PartitionStatus.STOP, 5, 8.0))
    assert lag_line(lag_view(behind, more_behind, stopped)).group == "worker"
    line = lag_line(lag_view(behind, more_behind))
    assert (line.group, line.lag, line.time_lag_s, line.eta_s, line.eta_reason) == (
        "websocket", 10, 40.0, None, "not consuming")
    caught_up = lag_line(lag_view(group("audit", GroupStatus.OK, partition("audit", PartitionStatus.OK, 0, 0.0))))
    assert (caught_up.group, caught_up.groups, caught_up.samples) == (None, 1, 4)
