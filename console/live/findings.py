"""The rules: each area's state in, `Finding`s out (what is wrong, where, since when, what to run next).

Pure functions over the hub's views, no I/O: `status`, the dashboard's Overview and the runbooks judge
the same state the same way, and the rules are tested on crafted states. Severity says what an operator
should do: `error` act now (a rollout failed, pods crash-loop, a consumer group stopped, a critical alert
fires, a certificate expired), `warn` look soon (dead letters waiting, a certificate about to expire,
restarts, a source that cannot be read, a warning alert), `info` context that is not a problem (a paused
rollout, a pending alert, a source this target does not have). Any `warn` or `error` makes `status` exit 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from console.live.hub import LagView, Snapshot, WorkloadsView
from console.live.slots import SlotView
from console.model.alerts import AlertReport
from console.model.conditions import find
from console.model.dlq import DlqSummary
from console.model.event_rates import EventsReport
from console.model.findings import Finding, Severity, ordered
from console.model.lag import GroupStatus
from console.model.platform import CertificateStatus, PlatformReport
from console.model.pods import PodSummary
from console.model.rollout import RolloutState, RolloutStatus
from console.output import format_age, format_duration

STALLED_AFTER_S = 120.0  # a rollout without progress this long is stalled (kubectl waits for its deadline: 600 s)
RECENT_RESTART_S = 900.0  # a healthy pod restarted this recently is worth a look: its restarts are climbing
AREA_OF_SLOT = {"workloads": "rollouts, pods and platform resources", "wiring": "Subscriptions and ScaledObjects",
                "lag": "consumer lag", "dead_letters": "dead letters", "alerts": "alerts", "events": "event rates",
                "logs": "logs and dead-letter reasons"}


def judge(snapshot: Snapshot, now: float | None = None) -> list[Finding]:
    """Every finding of every area the snapshot has data for, worst first."""
    now = snapshot.at if now is None else now
    found: list[Finding] = []
    workloads: WorkloadsView | None = snapshot.workloads.value
    if workloads is not None:
        found += rollout_findings(workloads.rollouts, workloads.pods, now)
        found += pod_findings(workloads.pods, now)
        found += platform_findings(workloads.platform, now)
    if snapshot.lag.value is not None:
        found += lag_findings(snapshot.lag.value, now)
    if snapshot.dead_letters.value is not None:
        found += dead_letter_findings(snapshot.dead_letters.value, now)
    if snapshot.alerts.value is not None:
        found += alert_findings(snapshot.alerts.value)
    if snapshot.events.value is not None:
        found += event_findings(snapshot.events.value)
    found += source_findings(snapshot.areas(), now, sandbox=snapshot.sandbox)
    return ordered(found)


# --- rollouts and pods ------------------------------------------------------------------------------------


def rollout_findings(rollouts: Iterable[RolloutStatus], pods: Sequence[PodSummary], now: float) -> list[Finding]:
    """Failed (progress deadline exceeded), degraded (rolled out, replicas lost since), stalled (new pods
    cannot start, or no progress for STALLED_AFTER_S) and paused rollouts."""
    found = []
    newest = _newest_pods(pods)
    for r in rollouts:
        progressing = find(r.conditions, "Progressing")
        failing = [newest[r.name]] if r.name in newest and newest[r.name].problem else []
        cause = f" ({failing[0].name}: {failing[0].problem_reason})" if failing else ""
        if r.state is RolloutState.FAILED:
            found.append(Finding(Severity.ERROR, "rollouts", r.name, r.message + cause,
                                 since=progressing.last_transition if progressing else None,
                                 hint=f"todo-console rollout history {r.name}; todo-console rollout undo {r.name}",
                                 view="rollouts"))
        elif r.state is RolloutState.DEGRADED:
            available = find(r.conditions, "Available")
            found.append(Finding(Severity.ERROR, "rollouts", r.name, r.message + cause,
                                 since=available.last_transition if available and available.false else None,
                                 hint=f"todo-console pods --service {r.name} --describe", view="rollouts"))
        elif r.state is RolloutState.PROGRESSING:
            stalled = _stalled(r, failing, now)
            if stalled is not None:
                found.append(stalled)
        elif r.state is RolloutState.PAUSED:
            found.append(Finding(Severity.INFO, "rollouts", r.name, f'rollout of "{r.name}" is paused: nothing '
                                 "rolls out until it is resumed", hint=f"kubectl rollout resume deployment/{r.name}",
                                 view="rollouts"))
    return found


def _newest_pods(pods: Iterable[PodSummary]) -> dict[str, PodSummary]:
    """Each service's newest pod, the one whose failure holds a rollout up: a rollout's new pods are the
    newest, and old pods failing while a rollout replaces them are not the cause. One pass over the pods:
    1,000 pods under 100 Deployments, judged on every redraw of the dashboard."""
    newest: dict[str, PodSummary] = {}
    for pod in pods:
        if pod.service is None:
            continue
        known = newest.get(pod.service)
        if known is None or (pod.created_at or 0.0) > (known.created_at or 0.0):
            newest[pod.service] = pod
    return newest


def _stalled(r: RolloutStatus, failing: Sequence[PodSummary], now: float) -> Finding | None:
    progressing = find(r.conditions, "Progressing")
    last_progress = (progressing.last_update or progressing.last_transition) if progressing else None
    quiet_s = now - last_progress if last_progress is not None else None
    if not failing and (quiet_s is None or quiet_s < STALLED_AFTER_S):
        return None
    why = (f"new pods cannot start ({failing[0].name}: {failing[0].problem_reason})" if failing
           else f"no progress for {format_age(quiet_s)}")
    deadline = ""
    if r.progress_deadline_s and last_progress is not None:
        left = last_progress + r.progress_deadline_s - now
        deadline = f"; it fails its progress deadline in {format_duration(max(left, 0))}"
    return Finding(Severity.ERROR if failing else Severity.WARN, "rollouts", r.name,
                   f'rollout of "{r.name}" stalled: {why}{deadline}', since=last_progress,
                   hint=f"todo-console pods --service {r.name} --describe; todo-console rollout undo {r.name}",
                   view="rollouts")


def pod_findings(pods: Iterable[PodSummary], now: float) -> list[Finding]:
    """Per service: pods that cannot run (crash loop, image pull, failed), else restarts in the last 15 min."""
    by_service: dict[str, list[PodSummary]] = {}
    for pod in pods:
        by_service.setdefault(pod.service or pod.name, []).append(pod)
    found = []
    for service, members in sorted(by_service.items()):
        broken = [p for p in members if p.problem]
        if broken:
            first = broken[0]
            counts = f"{len(broken)} of {len(members)} pods" if len(members) > 1 else "pod"
            found.append(Finding(
                Severity.ERROR, "pods", service, f"{counts} {first.status}: {first.name}: {first.problem_reason}",
                since=_earliest(_trouble_since(p) for p in broken),
                hint=f"todo-console pods {first.name}; todo-console logs {service} --since 15m", view="pods"))
            continue
        restarted = [p for p in members if p.restarts and p.last_restart_at and now - p.last_restart_at
                     <= RECENT_RESTART_S]
        if restarted:
            last = max(restarted, key=lambda p: p.last_restart_at or 0.0)
            found.append(Finding(
                Severity.WARN, "pods", service,
                f"{last.name} restarted {last.restarts} time{'s' if last.restarts != 1 else ''}, the last "
                f"{format_age(now - (last.last_restart_at or now))} ago"
                + (f" ({len(restarted)} pods restarted)" if len(restarted) > 1 else ""),
                since=_earliest(p.last_restart_at for p in restarted),
                hint=f"todo-console pods {last.name}; todo-console logs {service} --since 15m", view="pods"))
    return found


def _trouble_since(pod: PodSummary) -> float | None:
    waiting = [c.since for c in pod.containers if c.state == "waiting" and c.since]
    return _earliest([*waiting, pod.last_restart_at]) or pod.started_at


def _earliest(times: Iterable[float | None]) -> float | None:
    return min((t for t in times if t is not None), default=None)


# --- platform resources ------------------------------------------------------------------------------------


def platform_findings(report: PlatformReport, now: float) -> list[Finding]:
    """A resource not ready is an error; one that works but needs attention (a certificate expiring, a
    ScaledObject on its fallback) a warning; a kind the console cannot read, a warning too (a blind spot)."""
    found = []
    for r in report.resources:
        if not r.problem:
            continue
        kind = r.kind.lower()
        ready = find(r.conditions, "Ready")
        since = ready.last_transition if ready is not None and not ready.true else None
        severity = Severity.ERROR if r.ready is False else Severity.WARN
        if isinstance(r, CertificateStatus):
            expired = r.days_left is not None and r.days_left <= 0
            severity = Severity.ERROR if expired or r.ready is False else Severity.WARN
            since = r.renewal_time if r.renewal_time is not None and r.renewal_time < now else since
        found.append(Finding(severity, "resources", f"{r.kind}/{r.name}", f"{r.state}: {r.message or 'no detail'}",
                             since=since, hint=f"todo-console resources --kind {kind}", view="platform"))
    for kind, error in report.unreadable:
        found.append(Finding(Severity.WARN, "resources", kind, f"cannot be read: {error}",
                             hint=f"todo-console resources --kind {kind.lower()}", view="platform"))
    return found


# --- Kafka ---------------------------------------------------------------------------------------------------


def lag_findings(view: LagView, now: float) -> list[Finding]:
    """Burrow's group verdict: ERR (a partition stopped, stalled or rewound) is an error, WARN (consuming but
    never catching up) a warning; with what KEDA is about to do for that group."""
    found = []
    for g in view.groups:
        if g.error:
            found.append(Finding(Severity.ERROR, "lag", g.group, f"offsets cannot be read: {g.error}",
                                 hint=f"todo-console lag {g.group}", view="lag"))
            continue
        if g.status not in (GroupStatus.ERR, GroupStatus.WARN):
            continue
        worst = g.worst
        behind = f", the oldest unconsumed {format_age(g.max_time_lag_s)} old" if g.max_time_lag_s else ""
        why = f"; {worst.tp}: {worst.status.value} {worst.reason}" if worst is not None else ""
        keda = view.keda.get(g.group)
        scaling = (f"; KEDA asks for {keda.desired} replica{'s' if keda.desired != 1 else ''} "
                   f"({'active' if keda.active else 'inactive'})") if keda is not None else ""
        found.append(Finding(
            Severity.ERROR if g.status is GroupStatus.ERR else Severity.WARN, "lag", g.group,
            f"{g.status.value}: {g.total_lag} messages behind{behind}{why}{scaling}",
            since=now - g.max_time_lag_s if g.max_time_lag_s else None,
            hint=f"todo-console lag {g.group}; todo-console logs {g.group} --since 15m", view="lag"))
    return found


def dead_letter_findings(summaries: Iterable[DlqSummary], now: float) -> list[Finding]:
    found = []
    for s in summaries:
        if not s.waiting:
            continue
        count = f"{s.waiting}{'+' if not s.scanned_all else ''}"
        oldest = f", the oldest for {format_age(now - s.oldest_waiting_at)}" if s.oldest_waiting_at else ""
        found.append(Finding(
            Severity.WARN, "dlq", s.topic,
            f"{count} dead letter{'s' if s.waiting != 1 else ''} waiting (from {', '.join(s.original_topics)}; "
            f"apps {', '.join(s.apps)}){oldest}",
            since=s.oldest_waiting_at, hint=f"todo-console dlq show {s.topic}", view="dead-letters"))
    return found


# --- Prometheus ------------------------------------------------------------------------------------------------


def alert_findings(report: AlertReport) -> list[Finding]:
    """Firing alerts by their `severity` label (critical: error, warning: warn, else info); pending ones as
    information; no rules loaded, or rules failing to evaluate, as warnings (nothing could fire)."""
    found = []
    for a in report.alerts:
        runbook = a.annotations.get("runbook_url")
        if a.firing:
            severity = {"critical": Severity.ERROR, "warning": Severity.WARN}.get(a.severity or "", Severity.INFO)
            message = f"firing: {a.summary or a.name}"
        else:
            severity, message = Severity.INFO, f"pending (about to fire): {a.summary or a.name}"
        found.append(Finding(severity, "alerts", a.name, message, since=a.active_at,
                             hint=runbook or "todo-console alerts", view="alerts"))
    if report.rules == 0:
        found.append(Finding(Severity.WARN, "alerts", "rules", "Prometheus has no alert rules loaded: no alert can "
                             "fire", hint="kubectl get prometheusrules -A", view="alerts"))
    for name, error in report.rule_errors.items():
        found.append(Finding(Severity.WARN, "alerts", name, f"the rule fails to evaluate: {error}",
                             hint="todo-console alerts", view="alerts"))
    return found


def event_findings(report: EventsReport) -> list[Finding]:
    found = []
    for t in report.failing:
        who = ", ".join(f"{r.service}/{r.stage}" if r.stage else r.service for r in t.failed)
        found.append(Finding(Severity.WARN, "events", t.topic, f"{t.failed_per_s:.2f} events/s failing ({who})",
                             hint=f"todo-console events --topic {t.topic}", view="events"))
    return found


# --- the sources themselves ------------------------------------------------------------------------------------


def source_findings(areas: Iterable[SlotView[Any]], now: float, *, sandbox: bool) -> list[Finding]:
    """A source that cannot be read is a problem for an operator (a blind spot): one warning per source and
    address, naming the areas it leaves unknown or stale. A source the target does not have is information."""
    down: dict[tuple[str, str, str], list[SlotView[Any]]] = {}
    found = []
    for view in areas:
        if view.state == "absent":
            found.append(Finding(Severity.INFO, "sources", view.source,
                                 f"{AREA_OF_SLOT[view.name]} not checked: {view.absent}", view="sources"))
        elif view.state in ("down", "stale"):
            down.setdefault((view.source, view.address, view.error or ""), []).append(view)
    for (source, _address, error), views in down.items():
        stale = [v for v in views if v.state == "stale"]
        kept = ""
        if stale and stale[0].updated_at is not None:
            kept = f"; showing what it said {format_age(now - stale[0].updated_at)} ago"
        unknown = " and ".join(AREA_OF_SLOT[v.name] for v in views)
        found.append(Finding(Severity.WARN, "sources", source, f"{error} ({unknown} {'stale' if stale else 'unknown'}"
                             f"{kept})", since=_earliest(v.failing_since for v in views),
                             hint=_source_hint(source, sandbox), view="sources"))
    return found


def _source_hint(source: str, sandbox: bool) -> str:
    if sandbox:
        return "todo-console sandbox status"
    return {
        "Kubernetes API": "kubectl cluster-info",
        "kafka": "todo-console resources --kind kafka; TODO_CONSOLE_KAFKA_BOOTSTRAP (console/README.md, Targets)",
        "prometheus": "kubectl -n monitoring get pods; TODO_CONSOLE_PROMETHEUS_URL (console/README.md, Targets)",
        "loki": "kubectl -n monitoring get pods; TODO_CONSOLE_LOKI_URL (console/README.md, Targets)",
    }.get(source, "todo-console status --json")
