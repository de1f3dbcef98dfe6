"""Verify a rollout: every Deployment available, every probe passing, no restart count climbing, no alert firing.

The same four questions an operator asks after a deploy, over the console's own sources, so the runbook and
`todo-console rollout status`, `pods` and `alerts` agree: the Workloads source (the Kubernetes API, or the
sandbox's supervisor standing in for pods) and Prometheus (the cluster's, or the sandbox's with the same
alert rules). "Climbing" is measured, not guessed: the restart count of every container is read, read again
`watch_s` later, and any container that restarted in between fails the check (a count that is high but
still is history, and shown as such). A Prometheus without alert rules proves nothing, so it fails too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from console.model.alerts import AlertReport
from console.model.pods import PodSummary
from console.model.rollout import RolloutStatus
from console.runbooks.procedures import Outcome
from console.sources.health import SourceError
from console.sources.workloads import Workloads
from console.target import Target


def open_workloads(target: Target) -> Workloads:
    from console.runbooks.procedures import ProcedureError
    from console.sources.workloads import open_workloads as open_source

    try:
        return open_source(target)
    except SourceError as exc:
        raise ProcedureError(str(exc)) from None


# --- Deployments and probes -----------------------------------------------------------------------------


def available_outcome(rollouts: Sequence[RolloutStatus]) -> Outcome:
    """Every Deployment rolled out and as available as it wants to be (kubectl's verdict, plus degraded)."""
    name = "every Deployment is available"
    if not rollouts:
        return Outcome(name, False, "no Deployment found")
    bad = [r for r in rollouts if not r.done or r.available < r.desired]
    if bad:
        return Outcome(name, False, "; ".join(f"{r.name}: {r.message} ({r.available}/{r.desired} available)"
                                              for r in bad))
    return Outcome(name, True, f"{len(rollouts)} Deployments, {sum(r.available for r in rollouts)} replicas available")


def rollout_rows(rollouts: Sequence[RolloutStatus]) -> list[tuple[object, ...]]:
    return [(r.name, r.state.value, f"{r.ready}/{r.desired}", r.available, r.revision or "-", r.message)
            for r in rollouts]


def probes_outcome(pods: Sequence[PodSummary]) -> Outcome:
    """Every container of every pod ready (its readiness probe passing) and none that cannot run."""
    name = "every readiness probe passes"
    if not pods:
        return Outcome(name, False, "no pod found")
    bad = [p for p in pods if p.ready_containers < p.total_containers or p.problem]
    if bad:
        return Outcome(name, False, "; ".join(f"{p.name} {p.ready} ready, {p.status}" +
                                              (f" ({p.problem_reason})" if p.problem_reason else "") +
                                              _unhealthy(p) for p in bad))
    return Outcome(name, True, f"{len(pods)} pods, {sum(p.total_containers for p in pods)} containers ready")


def _unhealthy(pod: PodSummary) -> str:
    """The kubelet's latest probe failure event, when there is one: it says which probe and why."""
    event = next((e for e in pod.events if e.reason == "Unhealthy"), None)
    return f": {event.message}" if event is not None else ""


def pod_rows(pods: Sequence[PodSummary]) -> list[tuple[object, ...]]:
    return [(p.name, p.service or "-", p.status, p.ready, p.restarts,
             ", ".join(f"{c.name}: {pr.kind}" for c in p.containers for pr in c.probes) or "-")
            for p in pods]


# --- restarts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestartWatch:
    """Restart counts per (pod, container), read twice `seconds` apart."""

    before: dict[tuple[str, str], int]
    after: dict[tuple[str, str], int]
    seconds: float

    def climbing(self) -> dict[tuple[str, str], tuple[int, int]]:
        return {key: (self.before[key], count) for key, count in self.after.items()
                if key in self.before and count > self.before[key]}


def restart_counts(pods: Sequence[PodSummary]) -> dict[tuple[str, str], int]:
    return {(p.name, c.name): c.restarts for p in pods for c in p.containers}


def watch_restarts(workloads: Workloads, before: Sequence[PodSummary], watch_s: float) -> RestartWatch:
    """Read the restart counts again after `watch_s` (the first reading is the pods already listed)."""
    began = time.monotonic()
    time.sleep(watch_s)
    after = workloads.pods()
    return RestartWatch(restart_counts(before), restart_counts(after), time.monotonic() - began)


def restarts_outcome(watch: RestartWatch) -> Outcome:
    name = "no restart count is climbing"
    climbing = watch.climbing()
    if climbing:
        return Outcome(name, False, f"restarted within {watch.seconds:.0f}s: " + ", ".join(
            f"{pod}/{container} {old} -> {new}" for (pod, container), (old, new) in sorted(climbing.items())))
    earlier = sum(watch.after.values())
    return Outcome(name, True, f"no restart in {watch.seconds:.0f}s" +
                   (f" ({earlier} earlier restarts in total)" if earlier else ""), watch.seconds)


# --- alerts ---------------------------------------------------------------------------------------------


def read_alerts(target: Target) -> tuple[AlertReport | None, str, str | None]:
    """(the report, Prometheus's address, why it could not be read)."""
    from console.sources.prometheus import prometheus_source

    try:
        source = prometheus_source(target)
    except SourceError as exc:
        return None, "-", str(exc)
    try:
        return source.alerts(), source.address, None
    except SourceError as exc:
        return None, source.address, str(exc)
    finally:
        source.close()


def alerts_outcome(report: AlertReport | None, error: str | None) -> Outcome:
    name = "no alert is firing"
    if report is None:
        return Outcome(name, False, error or "Prometheus could not be read")
    if report.rules == 0:
        return Outcome(name, False, "Prometheus has no alert rules loaded: an empty alert list proves nothing")
    if report.firing:
        return Outcome(name, False, "; ".join(f"{a.name} ({a.severity or 'no severity'}): {a.summary}"
                                              for a in report.firing))
    pending = f", {len(report.pending)} pending" if report.pending else ""
    return Outcome(name, True, f"{report.rules} alert rules evaluated, none firing{pending}")


def alert_rows(report: AlertReport | None) -> list[tuple[object, ...]]:
    if report is None:
        return []
    return [(a.name, a.state, a.severity or "-", a.summary) for a in report.alerts]
