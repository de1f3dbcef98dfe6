"""The 3 a.m. summary: services, rollouts in progress, the platform, dead letters, the worst lag, alerts, the
sources, and every finding. `status` prints it, the dashboard's Overview screen draws it; both get it from
`Hub.overview()`, a pure function of the hub's snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from console.live.findings import judge
from console.live.hub import LagView, Snapshot
from console.live.slots import SlotView
from console.model.alerts import AlertReport
from console.model.dlq import DlqSummary
from console.model.findings import Finding, Severity, is_problem, worst
from console.model.lag import GroupStatus
from console.model.platform import CertificateStatus, PlatformReport, PlatformResource
from console.model.pods import PodSummary
from console.model.rollout import RolloutState, RolloutStatus, image_version

# Which platform line each kind is summed up in.
PLATFORM_AREAS: dict[str, str] = {
    "Kafka": "kafka", "KafkaNodePool": "kafka", "KafkaTopic": "kafka", "Component": "dapr", "Subscription": "dapr",
    "Resiliency": "dapr", "Configuration": "dapr", "ScaledObject": "keda", "HorizontalPodAutoscaler": "autoscaling",
    "Certificate": "certificates",
}


@dataclass(frozen=True)
class ServiceLine:
    """One Deployment (a sandbox service): replicas, restarts of its pods, the version its images carry."""

    name: str
    state: str
    ready: int
    desired: int
    available: int
    restarts: int
    version: str | None
    problem: bool


@dataclass(frozen=True)
class PlatformLine:
    area: str  # kafka | dapr | keda | autoscaling | certificates
    ok: bool | None  # None: a kind of it could not be read
    summary: str


@dataclass(frozen=True)
class DeadLetterTotals:
    dlqs: int
    pending: int
    waiting: int
    oldest_waiting_at: float | None
    waiting_by_dlq: tuple[tuple[str, int], ...]  # the DLQs with dead letters waiting, most first


@dataclass(frozen=True)
class LagLine:
    """The group an operator should look at first (the worst status, then the most behind), and the counts."""

    group: str | None  # None: every group is caught up
    status: str | None
    lag: int
    time_lag_s: float | None
    time_lag_from: str | None
    eta_s: float | None
    eta_reason: str | None
    keda: str | None  # what KEDA would do, in a sentence
    groups: int
    err: int
    warn: int
    samples: int


@dataclass(frozen=True)
class Overview:
    target: str
    at: float
    services: tuple[ServiceLine, ...] | None  # None: the workloads could not be read
    rollouts: tuple[RolloutStatus, ...] | None  # those not complete (in progress, paused, failed)
    platform: tuple[PlatformLine, ...] | None
    dead_letters: DeadLetterTotals | None
    lag: LagLine | None
    alerts: AlertReport | None
    sources: tuple[SlotView[Any], ...]
    findings: tuple[Finding, ...]

    @property
    def worst(self) -> Severity:
        return worst(self.findings)

    @property
    def problem(self) -> bool:
        return is_problem(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The `status --json` payload (console/README.md documents it)."""
        return {
            "healthy": not self.problem,
            "worst": self.worst.label if self.findings else None,
            "services": [asdict(s) for s in self.services] if self.services is not None else None,
            "rollouts": [{"name": r.name, "state": r.state.value, "message": r.message, "desired": r.desired,
                          "updated": r.updated, "ready": r.ready, "available": r.available, "revision": r.revision}
                         for r in self.rollouts] if self.rollouts is not None else None,
            "platform": [asdict(p) for p in self.platform] if self.platform is not None else None,
            "dead_letters": _dlq_dict(self.dead_letters, self.at),
            "lag": asdict(self.lag) if self.lag is not None else None,
            "alerts": {"rules": self.alerts.rules, "firing": [a.to_dict() for a in self.alerts.firing],
                       "pending": len(self.alerts.pending)} if self.alerts is not None else None,
            "sources": [s.to_dict() for s in self.sources],
            "findings": [f.to_dict() for f in self.findings],
        }


def overview(snapshot: Snapshot, now: float | None = None, *, findings: Sequence[Finding] | None = None) -> Overview:
    """The summary of `snapshot`; `findings` are its judgement when the caller has it already (the hub's)."""
    now = snapshot.at if now is None else now
    workloads = snapshot.workloads.value
    return Overview(
        target=snapshot.target, at=now,
        services=services(workloads.rollouts, workloads.pods) if workloads else None,
        rollouts=tuple(r for r in workloads.rollouts if r.state not in (RolloutState.COMPLETE, RolloutState.DEGRADED))
        if workloads else None,
        platform=platform_lines(workloads.platform) if workloads else None,
        dead_letters=dead_letter_totals(snapshot.dead_letters.value) if snapshot.dead_letters.value is not None
        else None,
        lag=lag_line(snapshot.lag.value) if snapshot.lag.value is not None else None,
        alerts=snapshot.alerts.value,
        sources=tuple(v for v in snapshot.areas() if v.state != "unknown"),
        findings=tuple(judge(snapshot, now) if findings is None else findings),
    )


def services(rollouts: tuple[RolloutStatus, ...], pods: tuple[PodSummary, ...]) -> tuple[ServiceLine, ...]:
    restarts: dict[str, int] = {}
    for pod in pods:
        if pod.service:
            restarts[pod.service] = restarts.get(pod.service, 0) + pod.restarts
    return tuple(ServiceLine(r.name, r.state.value, r.ready, r.desired, r.available, restarts.get(r.name, 0),
                             ",".join(dict.fromkeys(image_version(i) for i in r.images)) or None, r.problem)
                 for r in rollouts)


def platform_lines(report: PlatformReport) -> tuple[PlatformLine, ...]:
    """One line per platform area present: each kind's ready count (or count, for Dapr's status-less kinds),
    the soonest certificate expiry, then what is wrong."""
    by_area: dict[str, list[PlatformResource]] = {}
    for r in report.resources:
        by_area.setdefault(PLATFORM_AREAS.get(r.kind, r.kind.lower()), []).append(r)
    unreadable: dict[str, list[str]] = {}
    for kind, _error in report.unreadable:
        unreadable.setdefault(PLATFORM_AREAS.get(kind, kind.lower()), []).append(kind)
    lines = []
    for area in dict.fromkeys(PLATFORM_AREAS.values()):
        resources = by_area.get(area, [])
        if not resources and area not in unreadable:
            continue
        parts = []
        for kind in dict.fromkeys(r.kind for r in resources):
            of_kind = [r for r in resources if r.kind == kind]
            if all(r.ready is None for r in of_kind):
                parts.append(f"{kind} {len(of_kind)}")
            else:
                parts.append(f"{kind} {sum(1 for r in of_kind if r.ready)}/{len(of_kind)} ready")
        certificates = [r for r in resources if isinstance(r, CertificateStatus) and r.days_left is not None]
        if certificates:
            soonest = min(certificates, key=lambda c: c.days_left or 0.0)
            parts.append(f"{soonest.name} expires in {soonest.days_left:.1f} days")
        problems = [f"{r.kind}/{r.name} {r.state}" for r in resources if r.problem]
        if problems:
            parts.append("problem: " + ", ".join(problems[:3]) + (f" (+{len(problems) - 3})" if len(problems) > 3
                                                                   else ""))
        if area in unreadable:
            parts.append("cannot read " + ", ".join(unreadable[area]))
        ok = None if area in unreadable else not problems
        lines.append(PlatformLine(area, ok, "; ".join(parts)))
    return tuple(lines)


def dead_letter_totals(summaries: tuple[DlqSummary, ...]) -> DeadLetterTotals:
    waiting = sorted(((s.topic, s.waiting) for s in summaries if s.waiting), key=lambda t: (-t[1], t[0]))
    oldest = [s.oldest_waiting_at for s in summaries if s.oldest_waiting_at is not None]
    return DeadLetterTotals(len(summaries), sum(s.pending for s in summaries), sum(s.waiting for s in summaries),
                            min(oldest, default=None), tuple(waiting))


def lag_line(view: LagView) -> LagLine:
    groups = view.groups
    counts = {status: sum(1 for g in groups if g.status is status) for status in (GroupStatus.ERR, GroupStatus.WARN)}
    judged = [g for g in groups if g.status in (GroupStatus.ERR, GroupStatus.WARN)]
    behind = sorted((g for g in groups if g.total_lag), key=lambda g: (-(g.max_time_lag_s or 0.0), -g.total_lag))
    chosen = judged[0] if judged else (behind[0] if behind else None)
    if chosen is None:
        return LagLine(None, None, 0, None, None, None, None, None, len(groups), 0, 0, view.samples)
    worst_partition = max(chosen.partitions, key=lambda p: p.time_lag.seconds or 0.0, default=None)
    keda = view.keda.get(chosen.group)
    scaling = (f"{keda.desired} replica{'s' if keda.desired != 1 else ''} "
               f"({'active' if keda.active else 'inactive'}): {keda.reason}") if keda is not None else None
    eta_reason = None
    if chosen.eta_s is None:
        lagging = [p for p in chosen.partitions if p.lag and p.eta_s is None]
        eta_reason = lagging[0].eta_reason if lagging else None
    return LagLine(chosen.group, chosen.status.value, chosen.total_lag, chosen.max_time_lag_s,
                   worst_partition.time_lag.method if worst_partition else None, chosen.eta_s, eta_reason, scaling,
                   len(groups), counts[GroupStatus.ERR], counts[GroupStatus.WARN], view.samples)


def _dlq_dict(totals: DeadLetterTotals | None, now: float) -> dict[str, Any] | None:
    if totals is None:
        return None
    return {"dlqs": totals.dlqs, "pending": totals.pending, "waiting": totals.waiting,
            "oldest_waiting_age_s": round(now - totals.oldest_waiting_at, 3) if totals.oldest_waiting_at else None,
            "waiting_by_dlq": [{"dlq": topic, "waiting": n} for topic, n in totals.waiting_by_dlq]}
