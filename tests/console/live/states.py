"""Crafted states for the findings rules: the model's own dataclasses, with defaults for a healthy system, so a
test says only what is wrong."""

from __future__ import annotations

from typing import Any

from console.live.hub import LagView, Snapshot, WorkloadsView
from console.live.slots import SlotView
from console.model.conditions import Condition
from console.model.kafka import TopicPartition
from console.model.lag import GroupLag, GroupStatus, PartitionLag, PartitionStatus, TimeLag
from console.model.platform import CertificateStatus, PlatformReport, PlatformResource, TopicStatus
from console.model.pods import ContainerSummary, PodSummary
from console.model.rollout import RolloutState, RolloutStatus

NOW = 1_800_000_000.0


def rollout(name: str, state: RolloutState = RolloutState.COMPLETE, *, conditions: tuple[Condition, ...] = (),
            desired: int = 1, ready: int = 1, image: str = "iad.ocir.io/t/todo/todo-{name}:0.1.0",
            message: str | None = None) -> RolloutStatus:
    return RolloutStatus(
        name=name, namespace="todo-app", state=state, message=message or f'deployment "{name}" is {state.value}',
        desired=desired, replicas=desired, updated=desired, ready=ready, available=ready, unavailable=desired - ready,
        generation=2, observed_generation=2, revision=3, images=(image.format(name=name),), paused=False,
        progress_deadline_s=600, restarted_at=None, conditions=conditions)


def condition(type_: str, status: str, reason: str, at: float, updated: float | None = None) -> Condition:
    return Condition(type_, status, reason, f"{type_} {reason}", at, updated if updated is not None else at)


def container(state: str = "running", reason: str | None = None, since: float | None = None,
              restarts: int = 0) -> ContainerSummary:
    return ContainerSummary(name="app", image="todo:0.1.0", init=False, ready=state == "running", started=True,
                            restarts=restarts, state=state, reason=reason, message=None, since=since,
                            last_termination=None, probes=())


def pod(name: str, service: str, *, status: str = "Running", problem: str | None = None, restarts: int = 0,
        last_restart_at: float | None = None, created_at: float = NOW - 86400,
        containers: tuple[ContainerSummary, ...] | None = None) -> PodSummary:
    return PodSummary(
        name=name, namespace="todo-app", service=service, phase="Running", status=status,
        ready_containers=0 if problem else 2, total_containers=2, restarts=restarts, last_restart_at=last_restart_at,
        node="10.0.10.11", ip="10.244.0.4", created_at=created_at, started_at=created_at, owner=f"{service}-abc",
        template_hash="abc", containers=containers if containers is not None else (container(),), conditions=(),
        events=(), problem=problem is not None, problem_reason=problem)


def topic(name: str, ready: bool = True, message: str | None = None) -> TopicStatus:
    return TopicStatus(kind="KafkaTopic", namespace="kafka", name=name, ready=ready,
                       state="Ready" if ready else "NotReady", message=message, problem=not ready,
                       conditions=(condition("Ready", "True" if ready else "False", "x", NOW - 600),),
                       cluster="todo-kafka", topic_name=name, partitions=3, replicas=1)


def certificate(days_left: float, renewal_time: float | None = None) -> CertificateStatus:
    expiring = days_left < 14
    return CertificateStatus(
        kind="Certificate", namespace="todo-app", name="todo-tls", ready=days_left > 0,
        state="Expired" if days_left <= 0 else "Expiring" if expiring else "Ready",
        message=f"expires in {days_left:.1f} days" if expiring else None, problem=expiring,
        conditions=(condition("Ready", "True" if days_left > 0 else "False", "Ready", NOW - 50 * 86400),),
        dns_names=("todo.example.com",), issuer="ClusterIssuer/letsencrypt-prod", secret="todo-tls",
        not_before=NOW - 60 * 86400, not_after=NOW + days_left * 86400, renewal_time=renewal_time,
        days_left=days_left)


def partition(group: str, status: PartitionStatus, lag: int, seconds: float | None, *, p: int = 0,
              eta_s: float | None = None, eta_reason: str = "not consuming", reason: str = "") -> PartitionLag:
    return PartitionLag(group=group, tp=TopicPartition("task-events", p), committed=10, start=0, end=10 + lag,
                        lag=lag, time_lag=TimeLag(seconds, "record" if seconds else "caught-up"), status=status,
                        reason=reason or status.value.lower(), consume_rate=0.0, produce_rate=0.0, eta_s=eta_s,
                        eta_reason=eta_reason, trend="steady", samples=4, complete=0.4)


def group(name: str, status: GroupStatus, *partitions: PartitionLag, error: str | None = None) -> GroupLag:
    return GroupLag(name, status, "Stable", 1, tuple(partitions), error)


def slot(name: str, value: Any = None, *, source: str = "kafka", address: str = "127.0.0.1:9092",
         error: str | None = None, absent: str | None = None, updated_at: float | None = NOW,
         failing_since: float | None = None) -> SlotView[Any]:
    checked = NOW if (value is not None or error or absent) else None
    return SlotView(name, source, address, value=value, error=error, absent=absent, checked_at=checked,
                    updated_at=updated_at if value is not None else None, failing_since=failing_since)


def snapshot(*, rollouts: tuple[RolloutStatus, ...] = (), pods: tuple[PodSummary, ...] = (),
             resources: tuple[PlatformResource, ...] = (), unreadable: tuple[tuple[str, str], ...] = (),
             lag: LagView | None = None, **areas: SlotView[Any]) -> Snapshot:
    workloads = WorkloadsView(rollouts, pods, PlatformReport(resources, unreadable))
    views = {
        "workloads": slot("workloads", workloads, source="Kubernetes API", address="https://127.0.0.1:6443"),
        "wiring": slot("wiring"), "lag": slot("lag", lag), "dead_letters": slot("dead_letters"),
        "alerts": slot("alerts", source="prometheus"), "events": slot("events", source="prometheus"),
        "logs": slot("logs", source="loki"), **areas}
    return Snapshot("context stand-in (todo-app)", False, NOW, **views)


def lag_view(*groups: GroupLag, keda: dict[str, Any] | None = None) -> LagView:
    return LagView(NOW, groups, keda or {}, {g.group: () for g in groups}, 4)
