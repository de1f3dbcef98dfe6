"""The sandbox as the rollout, pods and resources commands see it: processes stand in for pods.

Each app-id is one "Deployment" with one "replica": a pod whose containers are the service process
(`app`) and its dev Dapr sidecar (`daprd`), read from the supervisor's state through
`console.sandbox.control.status()` (pid checked against the system, ready, restarts, last exit,
uptime) and the probes from the plan the supervisor runs. `rollout restart` stops the service process
and lets the supervisor start it again, as deleting a pod lets its ReplicaSet replace it; there are no
revisions, so `history` and `undo` are refused. Platform resources are what the sandbox has: the
broker (for the Kafka cluster), the topics it created (for KafkaTopics) and the Dapr resources the
sidecars load; KEDA, cert-manager and HPAs do not exist here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from console.manifests.render import tree_signature
from console.model import platform as platform_model
from console.model.conditions import Condition
from console.model.pods import ContainerSummary, PodSummary, Probe, Termination
from console.model.rollout import Revision, RolloutState, RolloutStatus
from console.sandbox import control
from console.sandbox.layout import SandboxLayout
from console.sandbox.plan import Plan
from console.sandbox.procs import stop_group
from console.sources.health import SourceError
from console.sources.workloads import RestartResult, UndoResult, Unknown, pick
from console.target import SandboxTarget

SOURCE = "sandbox"
NAMESPACE = "sandbox"
MONITOR_KIND = "monitor"  # the process kind of the sandbox's Prometheus (console/sandbox/monitoring.py)
CRASH_LOOP_RESTARTS = 3  # a process restarted this often and not ready is crash-looping, not starting
NO_REVISIONS = ("the sandbox has no revisions: its processes run the working tree as it is "
                "(history and undo work on a cluster: --context)")


class SandboxSource:
    def __init__(self, target: SandboxTarget, *, poll_s: float = 0.25) -> None:
        self.layout = SandboxLayout(target.root)
        self.label = target.label
        self.address = str(target.root)
        self._poll_s = poll_s
        self._rendered: tuple[tuple[str, tuple[int, int]], list[dict[str, Any]]] | None = None

    def close(self) -> None:
        pass  # nothing held open: every read goes to the state file

    def wait_for_change(self, timeout_s: float) -> bool:
        time.sleep(min(timeout_s, self._poll_s))
        return True

    # --- state ---------------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        state = control.status(self.layout)
        if not state.get("up"):
            phase = state.get("phase") or "never started"
            raise SourceError(SOURCE, self.address, f"not running ({phase}): `todo-console sandbox up`")
        return state

    def _apps(self, state: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
        """app-id -> {"app": service process, "daprd": sidecar process} (with the process name inside). The
        sandbox's Prometheus is the console's source, not a workload (in a cluster it lives outside the app
        namespace too); `rollout restart prometheus` still restarts it by its process name."""
        apps: dict[str, dict[str, dict[str, Any]]] = {}
        for name, proc in (state.get("processes") or {}).items():
            if proc.get("kind") == MONITOR_KIND:
                continue
            app = str(proc.get("app_id") or name)
            apps.setdefault(app, {})["daprd" if proc.get("kind") == "sidecar" else "app"] = {**proc, "name": name}
        return apps

    def _probes(self) -> dict[str, tuple[Probe, ...]]:
        """process name -> the readiness and liveness checks the supervisor runs on it."""
        try:
            plan = Plan.load(self.layout.plan)
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        probes: dict[str, tuple[Probe, ...]] = {}
        for spec in plan.processes:
            found = []
            if spec.ready_url:
                found.append(Probe("readiness", f"http-get {spec.ready_url}", 0, 1, int(plan.probe_interval_s) or 1,
                                   1, 3))
            if spec.liveness_url:
                found.append(Probe("liveness", f"http-get {spec.liveness_url}", 0, 2, int(plan.liveness_interval_s) or 1,
                                   1, spec.liveness_failures))
            probes[spec.name] = tuple(found)
        return probes

    # --- rollouts ------------------------------------------------------------------------------------

    def rollouts(self) -> list[RolloutStatus]:
        return [_rollout(app, procs) for app, procs in sorted(self._apps(self._state()).items())]

    def rollout(self, name: str) -> RolloutStatus:
        apps = self._apps(self._state())
        app = pick(list(apps), name, "sandbox service", prefix=False)
        return _rollout(app, apps[app])

    def history(self, name: str) -> list[Revision]:
        raise Unknown(NO_REVISIONS)

    def undo(self, name: str, to_revision: int = 0, *, dry_run: bool = False) -> UndoResult:
        raise Unknown(NO_REVISIONS)

    def restart(self, name: str, *, dry_run: bool = False, timeout_s: float = 60.0) -> RestartResult:
        """Stop the service process (its group) and wait until the supervisor has started a new one.

        `name` is an app (its service process restarts; the sidecar keeps running, as restarting one
        container of a pod) or a process name such as `worker-dapr`.
        """
        state = self._state()
        processes = state.get("processes") or {}
        apps = self._apps(state)
        target = name if name in processes else None
        if target is None:
            app = pick(list(apps), name, "sandbox service or process", prefix=False)
            target = (apps[app].get("app") or apps[app]["daprd"])["name"]
        proc = processes[target]
        old_pid, restarts = proc.get("pid"), int(proc.get("restarts") or 0)
        if dry_run:
            return RestartResult(deployment=name, dry_run=True, generation=None,
                                 detail=f"would stop {target} (pid {old_pid}); the supervisor starts it again")
        if not old_pid:
            raise Unknown(f"{target} is not running (the supervisor is already restarting it)")
        stop_group(int(proc.get("pgid") or old_pid), grace_s=10.0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = (self._state().get("processes") or {}).get(target) or {}
            if now.get("pid") and now.get("pid") != old_pid and now.get("running"):
                return RestartResult(deployment=name, dry_run=False, generation=None,
                                     detail=f"{target}: pid {old_pid} stopped, pid {now['pid']} started "
                                            f"(restart {int(now.get('restarts') or restarts + 1)})")
            time.sleep(self._poll_s)
        raise SourceError(SOURCE, self.address, f"{target}: no new process {timeout_s:g}s after stopping pid {old_pid} "
                                                f"(`todo-console sandbox logs supervisor`)")

    # --- pods ----------------------------------------------------------------------------------------

    def pods(self, service: str | None = None) -> list[PodSummary]:
        apps = self._apps(self._state())
        probes = self._probes()
        return [_pod(app, procs, probes) for app, procs in sorted(apps.items()) if service in (None, app)]

    def pod(self, name: str) -> PodSummary:
        apps = self._apps(self._state())
        app = pick(list(apps), name, "sandbox service")
        return _pod(app, apps[app], self._probes())

    # --- platform resources --------------------------------------------------------------------------

    def resources(self, kinds: Iterable[str] | None = None, now: float | None = None) -> platform_model.PlatformReport:
        state = self._state()
        wanted = set(kinds or platform_model.PLATFORM_KINDS)
        found: list[platform_model.PlatformResource] = []
        if "Kafka" in wanted:
            found.append(_broker(state.get("broker") or {}))
        if "KafkaTopic" in wanted:
            found.extend(_topic(t) for t in sorted(state.get("topics") or [], key=lambda t: str(t.get("name"))))
        unreadable: list[tuple[str, str]] = []
        dapr = wanted & {"Component", "Subscription", "Resiliency", "Configuration"}
        if dapr:
            try:
                manifests = self._manifests()
            except (OSError, ValueError) as exc:
                unreadable = [(kind, f"{SOURCE} at {self.address}: manifests: {exc}") for kind in sorted(dapr)]
            else:
                found.extend(r for r in platform_model.read_platform(manifests, time.time() if now is None else now)
                             if r.kind in dapr)
        return platform_model.PlatformReport(resources=tuple(found), unreadable=tuple(unreadable))

    def _manifests(self) -> list[dict[str, Any]]:
        """The Dapr resources the sidecars load: every YAML document under the plan's manifests directory, read
        as the dev sidecars read them (console/sandbox/sidecar/resources.py: the tree, not a kustomize build),
        and read again only when a file under it changed (a dashboard asks every 2 s)."""
        plan = Plan.load(self.layout.plan)
        if not plan.manifests_path:
            return []
        path = Path(plan.manifests_path)
        key = (str(path), tree_signature(path))
        if self._rendered is None or self._rendered[0] != key:
            self._rendered = (key, _yaml_documents(path))
        return self._rendered[1]


def _yaml_documents(root: Path) -> list[dict[str, Any]]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml")
                                                 and p.is_file())
    found: list[dict[str, Any]] = []
    for path in files:
        try:
            found.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    return found


# --- state -> model ---------------------------------------------------------------------------------------


def _rollout(app: str, procs: dict[str, dict[str, Any]]) -> RolloutStatus:
    members = list(procs.values())
    running = all(p.get("running") for p in members)
    ready = all(p.get("ready") for p in members)
    restarts = sum(int(p.get("restarts") or 0) for p in members)
    down = [p for p in members if not p.get("running")]
    if ready:
        state, message = RolloutState.COMPLETE, f'sandbox service "{app}" is ready'
    elif down and restarts >= CRASH_LOOP_RESTARTS:
        worst = down[0]
        state, message = (RolloutState.DEGRADED, f'sandbox service "{app}": {worst["name"]} keeps exiting '
                          f"(last exit {worst.get('last_exit')}, {restarts} restarts)")
    elif down:
        state, message = (RolloutState.PROGRESSING, f'Waiting for sandbox service "{app}": {down[0]["name"]} '
                          "is being restarted by the supervisor...")
    else:
        state, message = RolloutState.PROGRESSING, f'Waiting for sandbox service "{app}" to become ready...'
    up = 1 if running else 0
    return RolloutStatus(
        name=app, namespace=NAMESPACE, state=state, message=message, desired=1, replicas=up, updated=up,
        ready=1 if ready else 0, available=1 if ready else 0, unavailable=0 if ready else 1, generation=1,
        observed_generation=1, revision=None, images=(), paused=False, progress_deadline_s=None,
        restarted_at=None, conditions=())


def _pod(app: str, procs: dict[str, dict[str, Any]], probes: dict[str, tuple[Probe, ...]]) -> PodSummary:
    containers = tuple(_container(role, procs[role], probes.get(procs[role]["name"], ()))
                       for role in ("app", "daprd") if role in procs)
    ready = sum(1 for c in containers if c.ready)
    restarts = sum(c.restarts for c in containers)
    waiting = [c for c in containers if c.state == "waiting"]
    crash_loop = bool(waiting) and restarts >= CRASH_LOOP_RESTARTS
    status = ("CrashLoopBackOff" if crash_loop else "Restarting" if waiting
              else "Running" if ready == len(containers) else "NotReady")
    started = [float(p["started_at"]) for p in procs.values() if p.get("started_at")]
    last_restart = max(started) if started and restarts else None
    problem = (f"{waiting[0].name}: exits and is restarted ({restarts} restarts, last exit "
               f"{waiting[0].last_termination.exit_code if waiting[0].last_termination else '?'})") if crash_loop else None
    return PodSummary(
        name=app, namespace=NAMESPACE, service=app, phase="Running" if not waiting else "Pending", status=status,
        ready_containers=ready, total_containers=len(containers), restarts=restarts, last_restart_at=last_restart,
        node="localhost", ip="127.0.0.1", created_at=min(started) if started else None,
        started_at=min(started) if started else None, owner=None, template_hash=None, containers=containers,
        conditions=(Condition("Ready", "True" if ready == len(containers) else "False", None, None, None),),
        events=(), problem=problem is not None, problem_reason=problem)


def _container(role: str, proc: dict[str, Any], probes: tuple[Probe, ...]) -> ContainerSummary:
    running = bool(proc.get("running"))
    last_exit = proc.get("last_exit")
    termination = None
    if last_exit is not None:
        termination = Termination(reason="Killed" if last_exit < 0 else "Error" if last_exit else "Completed",
                                  exit_code=last_exit if last_exit >= 0 else None,
                                  signal=-last_exit if last_exit < 0 else None, message=None, started_at=None,
                                  finished_at=None)
    return ContainerSummary(
        name=role, image=f"process {proc['name']}" + (f" pid {proc['pid']}" if proc.get("pid") else ""), init=False,
        ready=bool(proc.get("ready")), started=running, restarts=int(proc.get("restarts") or 0),
        state="running" if running else "waiting", reason=None if running else "Restarting",
        message=None if running else "exited; the supervisor starts it again after its backoff",
        since=proc.get("started_at") if running else None, last_termination=termination, probes=probes)


def _broker(broker: dict[str, Any]) -> platform_model.KafkaStatus:
    alive = bool(broker.get("alive", broker.get("pid")))
    return platform_model.KafkaStatus(
        kind="Kafka", namespace=NAMESPACE, name=f"broker ({broker.get('mode', '?')})", ready=alive,
        state="Ready" if alive else "NotReady", message=None if alive else "the broker is down; the supervisor "
        "restarts it", problem=not alive, conditions=(), kafka_version=None, metadata_version=None, cluster_id=None,
        bootstrap=(str(broker.get("bootstrap")),) if broker.get("bootstrap") else (), node_pools=())


def _topic(topic: dict[str, Any]) -> platform_model.TopicStatus:
    ok = topic.get("status") in ("created", "exists")
    declared, actual = topic.get("declared_partitions"), topic.get("actual_partitions")
    return platform_model.TopicStatus(
        kind="KafkaTopic", namespace=NAMESPACE, name=str(topic.get("name")), ready=ok,
        state="Ready" if ok else "NotReady",
        message=None if ok else f"{topic.get('status')}: declared {declared} partitions, the broker has {actual}",
        problem=not ok, conditions=(), cluster="sandbox", topic_name=str(topic.get("name")), partitions=actual or declared,
        replicas=1)
