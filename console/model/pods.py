"""Pods as an operator reads them: kubectl's STATUS, READY and RESTARTS columns, probes, last state, events.

The STATUS word follows kubectl's own printer (pkg/printers/internalversion/printers.go, printPod), so
"CrashLoopBackOff", "Init:0/1", "Terminating" or "Completed" mean here what they mean in `kubectl get
pods`. A pod is a problem when one of its containers cannot run (crash loop, image pull, bad config) or
the pod failed; a pod that is only starting is not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from console.model.conditions import Condition, conditions_of, find, parse_time
from console.model.kube_events import EventSummary, events_by_object

SERVICE_LABEL = "app.kubernetes.io/name"
RECENT_EVENTS = 10
# Waiting reasons the kubelet gives a container that cannot run, and terminated reasons of a failed run.
FAILING_WAITING_REASONS = frozenset({
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError",
    "CreateContainerError", "RunContainerError",
})
FAILED_TERMINATED_REASONS = frozenset({"Error", "OOMKilled", "ContainerCannotRun", "DeadlineExceeded"})


@dataclass(frozen=True, slots=True)
class Probe:
    kind: str  # liveness | readiness | startup
    action: str
    initial_delay_s: int
    timeout_s: int
    period_s: int
    success_threshold: int
    failure_threshold: int

    def describe(self) -> str:
        """As `kubectl describe pod` prints it."""
        return (f"{self.action} delay={self.initial_delay_s}s timeout={self.timeout_s}s period={self.period_s}s "
                f"#success={self.success_threshold} #failure={self.failure_threshold}")


@dataclass(frozen=True, slots=True)
class Termination:
    reason: str | None
    exit_code: int | None
    signal: int | None
    message: str | None
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class ContainerSummary:
    name: str
    image: str
    init: bool
    ready: bool
    started: bool | None
    restarts: int
    state: str  # running | waiting | terminated | unknown
    reason: str | None
    message: str | None
    since: float | None  # when the current state began
    last_termination: Termination | None
    probes: tuple[Probe, ...]


@dataclass(frozen=True, slots=True)
class PodSummary:
    name: str
    namespace: str
    service: str | None
    phase: str
    status: str  # kubectl's STATUS column
    ready_containers: int
    total_containers: int
    restarts: int
    last_restart_at: float | None
    node: str | None
    ip: str | None
    created_at: float | None
    started_at: float | None
    owner: str | None
    template_hash: str | None
    containers: tuple[ContainerSummary, ...]
    conditions: tuple[Condition, ...]
    events: tuple[EventSummary, ...]
    problem: bool
    problem_reason: str | None

    @property
    def ready(self) -> str:
        return f"{self.ready_containers}/{self.total_containers}"


def pod_summaries(pods: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]] = (),
                  service: str | None = None) -> list[PodSummary]:
    """Summaries sorted by service then name; `service` keeps only that service's pods."""
    by_object = events_by_object(events)
    chosen = [p for p in pods if service is None or service_of(p) == service]
    return sort_pods([pod_summary(p, by_object.get(("Pod", str(_meta(p).get("name"))), ())) for p in chosen])


def sort_pods(summaries: Iterable[PodSummary]) -> list[PodSummary]:
    return sorted(summaries, key=lambda s: (s.service or "", s.name))


def service_of(pod: Mapping[str, Any]) -> str | None:
    return _labels(pod).get(SERVICE_LABEL)


def with_events(summary: PodSummary, events: Iterable[EventSummary]) -> PodSummary:
    """The summary with the pod's recent events (newest first, as `events_by_object` orders them)."""
    return dataclasses.replace(summary, events=tuple(events)[:RECENT_EVENTS])


def pod_summary(pod: Mapping[str, Any], events: Iterable[EventSummary] = ()) -> PodSummary:
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    probes_by_name = {c.get("name"): _probes(c) for c in spec.get("containers") or []}
    sidecar_inits = {c.get("name") for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
    init_statuses = status.get("initContainerStatuses") or []
    statuses = status.get("containerStatuses") or []
    containers = tuple(
        [_container(c, init=True, probes=()) for c in init_statuses]
        + [_container(c, init=False, probes=probes_by_name.get(c.get("name"), ())) for c in statuses])
    conditions = conditions_of(pod)
    reason, ready, restarts, last_restart = _kubectl_status(pod, sidecar_inits, conditions)
    owner = next((r.get("name") for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    problem_reason = _problem(status, containers, reason)
    return PodSummary(
        name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")),
        service=_labels(pod).get(SERVICE_LABEL), phase=str(status.get("phase") or "Unknown"), status=reason,
        ready_containers=ready, total_containers=len(spec.get("containers") or []) + len(sidecar_inits),
        restarts=restarts, last_restart_at=last_restart, node=spec.get("nodeName"), ip=status.get("podIP"),
        created_at=parse_time(meta.get("creationTimestamp")), started_at=parse_time(status.get("startTime")),
        owner=owner, template_hash=_labels(pod).get("pod-template-hash"), containers=containers,
        conditions=conditions, events=tuple(events)[:RECENT_EVENTS],
        problem=problem_reason is not None, problem_reason=problem_reason,
    )


def _kubectl_status(pod: Mapping[str, Any], sidecar_inits: set[Any],
                    conditions: tuple[Condition, ...]) -> tuple[str, int, int, float | None]:
    """(STATUS, ready containers, restarts, last restart) exactly as kubectl's printPod computes them."""
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    ready = restarts = sidecar_restarts = 0
    last_restart: float | None = None
    sidecar_last: float | None = None
    initializing = False
    init_total = len(spec.get("initContainers") or [])
    for index, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        finished = parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        last_restart = _later(last_restart, finished)
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        is_sidecar = cs.get("name") in sidecar_inits
        if is_sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            sidecar_last = _later(sidecar_last, finished)
        if terminated and int(terminated.get("exitCode") or 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if terminated:
            reason = "Init:" + (terminated.get("reason") or _exit_word(terminated))
        elif waiting and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{index}/{init_total}"
        initializing = True
        break
    initialized = find(conditions, "Initialized")
    if not initializing or (initialized is not None and initialized.true):
        restarts, last_restart = sidecar_restarts, sidecar_last
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, parse_time(
                ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")))
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif terminated:
                reason = _exit_word(terminated)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = find(conditions, "Ready")
            reason = "Running" if pod_ready is not None and pod_ready.true else "NotReady"
    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, restarts, last_restart


def _exit_word(terminated: Mapping[str, Any]) -> str:
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{terminated.get('exitCode', 0)}"


def _container(cs: Mapping[str, Any], *, init: bool, probes: tuple[Probe, ...]) -> ContainerSummary:
    state = cs.get("state") or {}
    name = next((k for k in ("running", "waiting", "terminated") if state.get(k) is not None), "unknown")
    detail = state.get(name) or {}
    last = (cs.get("lastState") or {}).get("terminated")
    return ContainerSummary(
        name=str(cs.get("name", "")), image=str(cs.get("image", "")), init=init, ready=bool(cs.get("ready")),
        started=cs.get("started"), restarts=int(cs.get("restartCount") or 0), state=name,
        reason=detail.get("reason"), message=detail.get("message"),
        since=parse_time(detail.get("startedAt")) if name != "terminated" else parse_time(detail.get("finishedAt")),
        last_termination=_termination(last) if last else None, probes=probes,
    )


def _termination(raw: Mapping[str, Any]) -> Termination:
    return Termination(
        reason=raw.get("reason"), exit_code=raw.get("exitCode"), signal=raw.get("signal"),
        message=raw.get("message"), started_at=parse_time(raw.get("startedAt")),
        finished_at=parse_time(raw.get("finishedAt")),
    )


def _probes(container: Mapping[str, Any]) -> tuple[Probe, ...]:
    found = []
    for kind in ("liveness", "readiness", "startup"):
        raw = container.get(f"{kind}Probe")
        if raw:
            found.append(Probe(
                kind=kind, action=_probe_action(raw), initial_delay_s=int(raw.get("initialDelaySeconds") or 0),
                timeout_s=int(raw.get("timeoutSeconds") or 1), period_s=int(raw.get("periodSeconds") or 10),
                success_threshold=int(raw.get("successThreshold") or 1),
                failure_threshold=int(raw.get("failureThreshold") or 3)))
    return tuple(found)


def _probe_action(raw: Mapping[str, Any]) -> str:
    if raw.get("httpGet"):
        get = raw["httpGet"]
        scheme = str(get.get("scheme") or "HTTP").lower()
        return f"http-get {scheme}://{get.get('host', '')}:{get.get('port')}{get.get('path', '/')}"
    if raw.get("tcpSocket"):
        return f"tcp-socket {raw['tcpSocket'].get('host', '')}:{raw['tcpSocket'].get('port')}"
    if raw.get("grpc"):
        return f"grpc <pod>:{raw['grpc'].get('port')} {raw['grpc'].get('service', '')}".rstrip()
    if raw.get("exec"):
        return "exec [" + " ".join(str(a) for a in raw["exec"].get("command") or []) + "]"
    return "unknown"


def _problem(status: Mapping[str, Any], containers: tuple[ContainerSummary, ...], reason: str) -> str | None:
    """Why this pod needs an operator, in one line, or None."""
    for c in containers:
        if c.state == "waiting" and c.reason in FAILING_WAITING_REASONS:
            last = c.last_termination
            exit_part = (f", last exit {last.exit_code} ({last.reason})" if last and last.exit_code is not None
                         else "")
            return f"{c.name}: {c.reason}{exit_part}, {c.restarts} restarts"
        if c.state == "terminated" and c.reason in FAILED_TERMINATED_REASONS and not c.init:
            return f"{c.name}: terminated ({c.reason})"
    if status.get("phase") in ("Failed", "Unknown"):
        return f"pod {status.get('phase')}: {status.get('reason') or reason}" + (
            f" ({status['message']})" if status.get("message") else "")
    return None


def _later(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return _meta(obj).get("labels") or {}
