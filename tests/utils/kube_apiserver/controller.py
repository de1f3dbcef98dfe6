"""The control plane behind the stand-in: Deployment and ReplicaSet controllers, a scheduler, kubelets.

They write what their real counterparts write, step by step, so a client watching sees a rollout move:
- the Deployment controller finds or creates the ReplicaSet of the current pod template (revision =
  highest + 1; a ReplicaSet rolled back to keeps its hash, takes the new number and records the old
  one in `deployment.kubernetes.io/revision-history`), copies the Deployment's annotations (the change
  cause) onto it, scales new up and old down within maxSurge/maxUnavailable, writes
  replicas/updated/ready/available/unavailable, observedGeneration and the Progressing/Available
  conditions with the controller's reasons and messages (ProgressDeadlineExceeded once
  progressDeadlineSeconds pass without progress), and prunes old ReplicaSets beyond
  revisionHistoryLimit;
- the ReplicaSet controller creates and deletes pods (Terminating first) and writes its own status;
- kubelets take a pod from Pending to Running and Ready, or into CrashLoopBackOff / ImagePullBackOff
  when a test says so, with containerStatuses, restart counts, last state and the Events kubelet emits.

Time comes from the store's `Clock`, which tests advance to pass a progress deadline.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tests.utils.kube_apiserver.resources import BY_KIND
from tests.utils.kube_apiserver.store import Clock, Store, clone, managed_fields
from tests.utils.kube_apiserver.store import stamp as _stamp

DEPLOYMENT = BY_KIND[("apps/v1", "Deployment")]
REPLICASET = BY_KIND[("apps/v1", "ReplicaSet")]
POD = BY_KIND[("v1", "Pod")]
EVENT = BY_KIND[("v1", "Event")]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
# Deployment annotations the controller does not copy onto its ReplicaSets (deployment/util).
NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
                        DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"})
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString
DAPRD_IMAGE = "ghcr.io/dapr/daprd:1.15.5"
CRASH_EVERY_STEPS = 6
FAILURE_MODES = ("CrashLoopBackOff", "ImagePullBackOff")


def template_hash(template: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[index])
    return "".join(chars)


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    plain = clone(template)
    ((plain.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    return plain


def apply_deployment_defaults(dep: dict[str, Any]) -> dict[str, Any]:
    """The API server's defaulting for apps/v1 Deployment fields the console reads."""
    spec = dep.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    pod_spec = spec.setdefault("template", {}).setdefault("spec", {})
    pod_spec.setdefault("restartPolicy", "Always")
    pod_spec.setdefault("dnsPolicy", "ClusterFirst")
    pod_spec.setdefault("schedulerName", "default-scheduler")
    pod_spec.setdefault("terminationGracePeriodSeconds", 30)
    for container in pod_spec.get("containers") or []:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("imagePullPolicy", "IfNotPresent")
    return dep


def _scaled(value: Any, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = replicas * int(value[:-1]) / 100
        return int(-(-exact // 1)) if round_up else int(exact)
    return int(value or 0)


class ControlPlane:
    def __init__(self, store: Store, *, nodes: Iterable[str] = ("10.0.10.11", "10.0.10.12", "10.0.10.13"),
                 step_s: float = 0.05, seed: int = 7) -> None:
        self.store = store
        self.nodes = tuple(nodes)
        self.step_s = step_s
        self.rng = random.Random(seed)
        self._ip = 0
        self._pod_modes: dict[str, str] = {}        # pod uid -> failure mode
        self._breaks: dict[tuple[str, str], str] = {}  # deployment -> mode for pods created from now on
        self._crash_steps: dict[str, int] = {}
        self._dirty: set[tuple[str, str]] = set()  # Deployments not yet settled: only these are synced
        self._passes = 0  # passes of step() so far (wait_synced)
        self._pod_fields: dict[str, dict[str, Any]] = {}  # ReplicaSet uid -> its pods' managedFields entry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()

    # --- running -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kube-stand-in-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.step_s):
            self.step()

    def wait_synced(self, timeout_s: float = 30.0) -> None:
        """Return once the controllers have made a whole pass after this call, so a test that plays a scenario
        and then asks the API sees its effect (the controllers run on their own thread)."""
        with self._lock:
            target = self._passes + 2  # the pass under way may have started before the scenario
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._passes >= target:
                    return
            time.sleep(self.step_s / 2)
        raise TimeoutError(f"the stand-in's controllers made no pass in {timeout_s}s")

    def touch(self, namespace: str, deployment: str) -> None:
        """A Deployment changed (a PATCH, a scenario): sync it until it settles."""
        with self._lock:
            self._dirty.add((namespace, deployment))

    def step(self) -> None:
        """One pass of every controller over the Deployments that are not settled."""
        with self._lock:
            for namespace, name in sorted(self._dirty):
                if self.sync(namespace, name):
                    self._dirty.discard((namespace, name))
            self._passes += 1

    # --- scenarios -----------------------------------------------------------------------------------

    def break_new_pods(self, namespace: str, deployment: str, mode: str = "CrashLoopBackOff") -> None:
        """Pods this Deployment creates from now on fail with `mode`: the next rollout stalls."""
        assert mode in FAILURE_MODES, mode
        self._breaks[(namespace, deployment)] = mode
        self.touch(namespace, deployment)

    def crash_loop(self, namespace: str, deployment: str) -> None:
        """The Deployment's running pods start crash-looping (its availability drops)."""
        with self._lock:
            for pod in self._pods_of_deployment(namespace, deployment):
                self._pod_modes[pod["metadata"]["uid"]] = "CrashLoopBackOff"
            self.touch(namespace, deployment)

    def heal(self, namespace: str, deployment: str) -> None:
        with self._lock:
            self._breaks.pop((namespace, deployment), None)
            for pod in self._pods_of_deployment(namespace, deployment):
                self._pod_modes.pop(pod["metadata"]["uid"], None)
            self.touch(namespace, deployment)

    # --- loading a steady state ----------------------------------------------------------------------

    def install(self, deployment: dict[str, Any], *, history: list[tuple[str, str]] | None = None,
                events: bool = True, age_s: float = 86400.0) -> None:
        """Create a Deployment already rolled out: old ReplicaSets for `history` [(image tag, change
        cause)] scaled to 0, the current one with every pod Running and Ready."""
        with self._lock:
            dep = apply_deployment_defaults(clone(deployment))
            born = self.store.clock.now() - age_s
            dep["metadata"]["creationTimestamp"] = self.store.clock.stamp(born)
            dep = self.store.create(dep)
            revision = 0
            for index, (tag, cause) in enumerate(history or []):
                revision += 1
                old_template = _retag(dep["spec"]["template"], tag)
                annotations = {"kubernetes.io/change-cause": cause} if cause else {}
                self._create_replicaset(dep, old_template, revision, annotations,
                                        at=born + index * age_s / (len(history or []) + 1))
            ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
            rs = self._create_replicaset(dep, dep["spec"]["template"], revision + 1,
                                         self._copied_annotations(dep), at=born + age_s * 0.9,
                                         replicas=dep["spec"]["replicas"])
            self.store.mutate(DEPLOYMENT, ns, name, lambda d: d["metadata"].setdefault("annotations", {}).update(
                {REVISION: str(revision + 1)}))
            for _ in range(dep["spec"]["replicas"]):
                self._create_pod(rs, events=events, at=born + age_s * 0.9, started_at=born + age_s * 0.9 + 5)
            self._sync_replicaset(rs)
            self._write_status(ns, name, progress_at=born + age_s * 0.9 + 10)

    # --- the Deployment controller -------------------------------------------------------------------

    def sync(self, namespace: str, name: str) -> bool:
        """Reconcile one Deployment; True once it is settled (rolled out, every pod ready, nothing failing)."""
        dep = self.store.get(DEPLOYMENT, namespace, name)
        if dep is None:
            return True
        self._kubelet(namespace, name)
        owned = self._owned_replicasets(dep)
        new_rs = next((rs for rs in owned if _without_hash(rs["spec"]["template"]) ==
                       _without_hash(dep["spec"]["template"])), None)
        revisions = [int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in owned]
        top = max(revisions, default=0)
        if new_rs is None:
            new_rs = self._create_replicaset(dep, dep["spec"]["template"], top + 1, self._copied_annotations(dep))
            self._set_revision(dep, top + 1)
            self._progressing(dep, "True", "NewReplicaSetCreated", f'Created new replica set "{new_rs["metadata"]["name"]}"')
            owned.append(new_rs)
        else:
            current = int(new_rs["metadata"].get("annotations", {}).get(REVISION, "0"))
            if current < top:  # rolled back to an older ReplicaSet: it becomes the newest revision
                new_rs = self._renumber(new_rs, dep, current, top + 1)
                self._set_revision(dep, top + 1)
                self._progressing(dep, "True", "FoundNewReplicaSet", f'Found new replica set "{new_rs["metadata"]["name"]}"')
                owned = self._owned_replicasets(dep)
            elif dep["metadata"].get("annotations", {}).get(REVISION) != str(current):
                self._set_revision(dep, current)
        if not dep["spec"].get("paused"):
            self._roll(dep, new_rs, [rs for rs in owned if rs["metadata"]["name"] != new_rs["metadata"]["name"]])
        for rs in self._owned_replicasets(dep):
            self._sync_replicaset(rs)
        self._write_status(namespace, name)
        self._prune_history(dep)
        return self._settled(namespace, name)

    def _settled(self, namespace: str, name: str) -> bool:
        dep = self.store.get(DEPLOYMENT, namespace, name)
        if dep is None:
            return True
        status = dep.get("status") or {}
        progressing: dict[str, Any] = next((c for c in status.get("conditions") or [] if c["type"] == "Progressing"), {})
        pods = self._pods_of_deployment(namespace, name, terminating=True)
        return (progressing.get("reason") == "NewReplicaSetAvailable"
                and status.get("observedGeneration") == dep["metadata"]["generation"]
                and all(_pod_ready(p) and not p["metadata"].get("deletionTimestamp") for p in pods)
                and not any(p["metadata"]["uid"] in self._pod_modes for p in pods))

    def _roll(self, dep: dict[str, Any], new_rs: dict[str, Any], old: list[dict[str, Any]]) -> None:
        desired = int(dep["spec"]["replicas"])
        rolling = (dep["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        surge = _scaled(rolling.get("maxSurge", 1), desired, round_up=True)
        unavailable = _scaled(rolling.get("maxUnavailable", 0), desired, round_up=False)
        if surge == 0 and unavailable == 0:
            surge = 1
        new_count = int(new_rs["spec"].get("replicas") or 0)
        old_count = sum(int(rs["spec"].get("replicas") or 0) for rs in old)
        if new_count < desired and new_count + old_count < desired + surge:
            grow = min(desired - new_count, desired + surge - new_count - old_count)
            self._scale(dep, new_rs, new_count + grow)
        elif new_count > desired:
            self._scale(dep, new_rs, desired)
        if old_count:
            available = sum(self._available(rs) for rs in [new_rs, *old])
            removable = available - (desired - unavailable)
            for rs in sorted(old, key=lambda r: int(r["metadata"].get("annotations", {}).get(REVISION, "0"))):
                count = int(rs["spec"].get("replicas") or 0)
                unhealthy = count - self._available(rs)
                cut = min(count, max(0, removable) + unhealthy)
                if cut > 0:
                    self._scale(dep, rs, count - cut)
                    removable -= max(0, cut - unhealthy)

    def _scale(self, dep: dict[str, Any], rs: dict[str, Any], replicas: int) -> None:
        before = int(rs["spec"].get("replicas") or 0)
        if before == replicas:
            return
        ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]

        def change(obj: dict[str, Any]) -> None:
            obj["spec"]["replicas"] = replicas
            obj["metadata"].setdefault("annotations", {})[DESIRED_REPLICAS] = str(dep["spec"]["replicas"])
        self.store.mutate(REPLICASET, ns, name, change, manager="kube-controller-manager")
        rs["spec"]["replicas"] = replicas
        verb = "up" if replicas > before else "down"
        self.event(dep, "Normal", "ScalingReplicaSet", f"Scaled {verb} replica set {name} from {before} to {replicas}",
                   "deployment-controller")

    def _write_status(self, namespace: str, name: str, *, progress_at: float | None = None) -> None:
        dep = self.store.get(DEPLOYMENT, namespace, name)
        if dep is None:
            return
        owned = self._owned_replicasets(dep)
        new_rs = next((rs for rs in owned if _without_hash(rs["spec"]["template"]) ==
                       _without_hash(dep["spec"]["template"])), None)
        old_status = dep.get("status") or {}
        desired = int(dep["spec"]["replicas"])
        rolling = (dep["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = _scaled(rolling.get("maxUnavailable", 0), desired, round_up=False)
        pods = [p for rs in owned for p in self._pods_of(rs)]
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in active if _pod_ready(p))
        updated = len([p for p in active if new_rs and _owner(p) == new_rs["metadata"]["uid"]])
        total_spec = sum(int(rs["spec"].get("replicas") or 0) for rs in owned)
        status: dict[str, Any] = {
            "observedGeneration": dep["metadata"]["generation"], "replicas": len(active), "updatedReplicas": updated,
            "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": max(0, total_spec - ready),
            "terminatingReplicas": len(pods) - len(active),
        }
        status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        now = self.store.clock.now() if progress_at is None else progress_at
        conditions = {c["type"]: c for c in clone(old_status.get("conditions") or [])}
        if ready >= desired - max_unavailable:
            _set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", now)
        else:
            _set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", now)
        rs_name = new_rs["metadata"]["name"] if new_rs else name
        complete = updated == desired and len(active) == desired and ready == desired and len(pods) == desired
        progressing = conditions.get("Progressing")
        progressed = (updated > int(old_status.get("updatedReplicas") or 0)
                      or len(active) < int(old_status.get("replicas") or 0)
                      or ready > int(old_status.get("readyReplicas") or 0))
        if complete:
            _set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                           f'ReplicaSet "{rs_name}" has successfully progressed.', now,
                           touch=not progressing or progressing.get("reason") != "NewReplicaSetAvailable")
        elif progressed or progressing is None:
            _set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                           f'ReplicaSet "{rs_name}" is progressing.', now, touch=True)
        elif (progressing.get("reason") not in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded")
              and _time(progressing.get("lastUpdateTime")) + int(dep["spec"]["progressDeadlineSeconds"]) < now):
            _set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                           f'ReplicaSet "{rs_name}" has timed out progressing.', now, touch=True)
        status["conditions"] = [conditions[t] for t in ("Available", "Progressing") if t in conditions]

        def change(obj: dict[str, Any]) -> None:
            obj["status"] = status
        self.store.mutate(DEPLOYMENT, namespace, name, change)

    def _progressing(self, dep: dict[str, Any], status: str, reason: str, message: str) -> None:
        now = self.store.clock.now()

        def change(obj: dict[str, Any]) -> None:
            conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
            _set_condition(conditions, "Progressing", status, reason, message, now, touch=True)
            obj.setdefault("status", {})["conditions"] = list(conditions.values())
        self.store.mutate(DEPLOYMENT, dep["metadata"]["namespace"], dep["metadata"]["name"], change)

    def _set_revision(self, dep: dict[str, Any], revision: int) -> None:
        self.store.mutate(DEPLOYMENT, dep["metadata"]["namespace"], dep["metadata"]["name"],
                          lambda d: d["metadata"].setdefault("annotations", {}).update({REVISION: str(revision)}))

    def _renumber(self, rs: dict[str, Any], dep: dict[str, Any], old: int, new: int) -> dict[str, Any]:
        def change(obj: dict[str, Any]) -> None:
            annotations = obj["metadata"].setdefault("annotations", {})
            earlier = [p for p in annotations.get(REVISION_HISTORY, "").split(",") if p]
            annotations[REVISION_HISTORY] = ",".join([*earlier, str(old)])
            annotations[REVISION] = str(new)
            annotations.update(self._copied_annotations(dep))
        return self.store.mutate(REPLICASET, rs["metadata"]["namespace"], rs["metadata"]["name"], change,
                                 manager="kube-controller-manager")

    def _copied_annotations(self, dep: dict[str, Any]) -> dict[str, str]:
        return {k: v for k, v in (dep["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED}

    def _prune_history(self, dep: dict[str, Any]) -> None:
        limit = int(dep["spec"].get("revisionHistoryLimit", 10))
        idle = [rs for rs in self._owned_replicasets(dep)
                if not rs["spec"].get("replicas") and not (rs.get("status") or {}).get("replicas")
                and _without_hash(rs["spec"]["template"]) != _without_hash(dep["spec"]["template"])]
        idle.sort(key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION, "0")))
        for rs in idle[:max(0, len(idle) - limit)]:
            self.store.delete(REPLICASET, rs["metadata"]["namespace"], rs["metadata"]["name"])

    # --- the ReplicaSet controller -------------------------------------------------------------------

    def _create_replicaset(self, dep: dict[str, Any], template: dict[str, Any], revision: int,
                           annotations: dict[str, str], *, at: float | None = None, replicas: int = 0) -> dict[str, Any]:
        template = clone(template)
        pod_hash = template_hash(_without_hash(template))
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        meta = dep["metadata"]
        selector = clone(dep["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        rs = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}", "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {**annotations, REVISION: str(revision),
                                DESIRED_REPLICAS: str(dep["spec"]["replicas"]),
                                MAX_REPLICAS: str(int(dep["spec"]["replicas"]) + 1)},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
                "creationTimestamp": self.store.clock.stamp(at),
            },
            "spec": {"replicas": replicas, "selector": selector, "template": template},
            "status": {"replicas": 0, "observedGeneration": 1},
        }
        return self.store.create(rs, manager="kube-controller-manager")

    def _sync_replicaset(self, rs: dict[str, Any]) -> None:
        pods = self._pods_of(rs)
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        want = int(rs["spec"].get("replicas") or 0)
        for _ in range(want - len(active)):
            self._create_pod(rs)
        if len(active) > want:
            # The ReplicaSet controller deletes unready pods first, then the newest.
            newest_first = sorted(active, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)
            victims = sorted(newest_first, key=_pod_ready)
            for pod in victims[:len(active) - want]:
                self._terminate(pod, rs)
        pods = [p for p in self._pods_of(rs) if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in pods if _pod_ready(p))
        status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": rs["metadata"].get("generation", 1)}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if rs.get("status") != status:
            self.store.mutate(REPLICASET, rs["metadata"]["namespace"], rs["metadata"]["name"],
                              lambda obj: obj.update(status=status))

    # --- pods, scheduler and kubelet -----------------------------------------------------------------

    def _create_pod(self, rs: dict[str, Any], *, events: bool = True, at: float | None = None,
                    started_at: float | None = None) -> dict[str, Any]:
        """A new pod of `rs`, scheduled (Pending), or already started by its kubelet when `started_at`."""
        template = clone(rs["spec"]["template"])
        meta = rs["metadata"]
        name = f"{meta['name']}-{''.join(self.rng.choice(SAFE_ALPHABET) for _ in range(5))}"
        spec = template.get("spec") or {}
        spec["nodeName"] = self.nodes[self.rng.randrange(len(self.nodes))]
        spec.setdefault("serviceAccountName", "default")
        spec["tolerations"] = [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 300} for t in ("not-ready", "unreachable")]
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        if annotations.get("dapr.io/enabled") == "true":
            spec.setdefault("containers", []).append(_daprd_container(annotations))
        pod: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "generateName": meta["name"] + "-", "namespace": meta["namespace"],
                         "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                         "annotations": dict(annotations),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": meta["name"],
                                              "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
                         "creationTimestamp": self.store.clock.stamp(at), "uid": str(uuid.uuid4())},
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": "Burstable", "conditions": [
                _pod_condition("PodScheduled", "True", at or self.store.clock.now(), self.store.clock)]},
        }
        owner = self._deployment_of(rs)
        if owner in self._breaks:
            self._pod_modes[pod["metadata"]["uid"]] = self._breaks[owner]
        if started_at is not None:
            pod["status"] = self._running_status(pod, started_at, events=events)
        if meta["uid"] not in self._pod_fields:  # managedFields weigh alike for a ReplicaSet's pods
            self._pod_fields[meta["uid"]] = managed_fields(pod, "kube-controller-manager", self.store.clock.stamp())
        pod = self.store.create(pod, managed=self._pod_fields[meta["uid"]], adopt=True)
        if events:
            self.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {name}", "replicaset-controller", at=at)
            self.event(pod, "Normal", "Scheduled",
                       f"Successfully assigned {meta['namespace']}/{name} to {spec['nodeName']}", "default-scheduler",
                       at=at)
        return pod

    def _terminate(self, pod: dict[str, Any], rs: dict[str, Any]) -> None:
        now = self.store.clock.stamp()

        def change(obj: dict[str, Any]) -> None:
            obj["metadata"]["deletionTimestamp"] = now
            obj["metadata"]["deletionGracePeriodSeconds"] = 30
        self.store.mutate(POD, pod["metadata"]["namespace"], pod["metadata"]["name"], change)
        self.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", "replicaset-controller")
        for container in pod["spec"].get("containers") or []:
            self.event(pod, "Normal", "Killing", f"Stopping container {container['name']}", "kubelet")

    def _kubelet(self, namespace: str, deployment: str) -> None:
        for pod in self._pods_of_deployment(namespace, deployment, terminating=True):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                self.store.delete(POD, meta["namespace"], meta["name"])
                self._pod_modes.pop(meta["uid"], None)
                continue
            mode = self._pod_modes.get(meta["uid"])
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Pending":
                self._start_pod(pod)
            elif mode == "CrashLoopBackOff":
                steps = self._crash_steps.get(meta["uid"], 0) + 1
                self._crash_steps[meta["uid"]] = steps
                if steps % CRASH_EVERY_STEPS == 1:
                    self._crash(pod)
            elif mode is None and not _pod_ready(pod):
                self._recover(pod)

    def _start_pod(self, pod: dict[str, Any]) -> None:
        now = self.store.clock.now()
        self.store.mutate(POD, pod["metadata"]["namespace"], pod["metadata"]["name"],
                          lambda obj: obj.update(status=self._running_status(obj, now)), manager="kubelet")

    def _running_status(self, pod: dict[str, Any], now: float, *, events: bool = True) -> dict[str, Any]:
        """What the kubelet reports once it started the pod's containers (or failed to, per its mode)."""
        mode = self._pod_modes.get(pod["metadata"]["uid"])
        statuses = []
        for container in pod["spec"].get("containers") or []:
            failing = mode is not None and container["name"] != "daprd"
            statuses.append(_container_status(container, now, ready=not failing))
            if failing and mode == "ImagePullBackOff":
                statuses[-1]["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                                     "message": f'Back-off pulling image "{container["image"]}"'}}
                statuses[-1]["started"] = False
                if events:
                    self.event(pod, "Warning", "Failed", f'Failed to pull image "{container["image"]}": rpc error: '
                               "code = NotFound desc = failed to pull and unpack image: not found", "kubelet")
                    self.event(pod, "Warning", "BackOff", f'Back-off pulling image "{container["image"]}"', "kubelet")
            elif failing:
                _crash_status(statuses[-1], now, self.store.clock)
            elif events:
                self.event(pod, "Normal", "Pulled", f'Container image "{container["image"]}" already present on '
                           "machine", "kubelet", at=now)
                self.event(pod, "Normal", "Created", f"Created container: {container['name']}", "kubelet", at=now)
                self.event(pod, "Normal", "Started", f"Started container {container['name']}", "kubelet", at=now)
        ready = all(s["ready"] for s in statuses)
        self._ip += 1
        ip = f"10.244.{self._ip // 250}.{self._ip % 250 + 2}"
        node = pod["spec"]["nodeName"]
        return {"phase": "Running", "qosClass": "Burstable", "hostIP": node, "hostIPs": [{"ip": node}], "podIP": ip,
                "podIPs": [{"ip": ip}], "startTime": self.store.clock.stamp(now), "containerStatuses": statuses,
                "conditions": _pod_conditions(ready, now, self.store.clock)}

    def _crash(self, pod: dict[str, Any]) -> None:
        now = self.store.clock.now()

        def change(obj: dict[str, Any]) -> None:
            for status in obj["status"].get("containerStatuses") or []:
                if status["name"] != "daprd":
                    _crash_status(status, now, self.store.clock)
            obj["status"]["conditions"] = _pod_conditions(False, now, self.store.clock, obj["status"].get("conditions"))
        updated = self.store.mutate(POD, pod["metadata"]["namespace"], pod["metadata"]["name"], change, manager="kubelet")
        app = next(c["name"] for c in updated["spec"]["containers"] if c["name"] != "daprd")
        self.event(updated, "Warning", "BackOff", f"Back-off restarting failed container {app} in pod "
                   f"{updated['metadata']['name']}_{updated['metadata']['namespace']}({updated['metadata']['uid']})",
                   "kubelet")

    def _recover(self, pod: dict[str, Any]) -> None:
        now = self.store.clock.now()

        def change(obj: dict[str, Any]) -> None:
            for status in obj["status"].get("containerStatuses") or []:
                status["state"] = {"running": {"startedAt": self.store.clock.stamp(now)}}
                status["ready"] = status["started"] = True
            obj["status"]["conditions"] = _pod_conditions(True, now, self.store.clock, obj["status"].get("conditions"))
        self.store.mutate(POD, pod["metadata"]["namespace"], pod["metadata"]["name"], change, manager="kubelet")

    # --- events ---------------------------------------------------------------------------------------

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str, component: str,
              *, at: float | None = None) -> None:
        """Record an Event the way client-go's recorder does: the same message again bumps `count`."""
        meta = obj["metadata"]
        stamp = self.store.clock.stamp(at)
        key = f"{meta['name']}.{hashlib.sha1(f'{reason}{message}'.encode()).hexdigest()[:16]}"  # noqa: S324
        existing = self.store.get(EVENT, meta["namespace"], key)
        if existing is not None:
            def bump(ev: dict[str, Any]) -> None:
                ev["count"] = int(ev.get("count") or 1) + 1
                ev["lastTimestamp"] = stamp
            self.store.mutate(EVENT, meta["namespace"], key, bump)
            return
        host = (obj.get("spec") or {}).get("nodeName") if component == "kubelet" else None
        self.store.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": key, "namespace": meta["namespace"], "creationTimestamp": stamp},
            "involvedObject": {"kind": obj["kind"], "namespace": meta["namespace"], "name": meta["name"],
                               "uid": meta.get("uid"), "apiVersion": obj["apiVersion"],
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "type": type_, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": component, **({"host": host} if host else {})},
            "reportingComponent": component, "reportingInstance": host or "",
        }, manager=component, adopt=True)

    # --- lookups --------------------------------------------------------------------------------------

    def _owned_replicasets(self, dep: dict[str, Any]) -> list[dict[str, Any]]:
        """Copies: the Deployment controller changes its local view of them while it scales."""
        return [clone(rs) for rs in self.store.owned_by(REPLICASET, dep["metadata"]["uid"])]

    def _pods_of(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        """The stored pods themselves, read-only (the store never changes a stored object in place)."""
        return self.store.owned_by(POD, rs["metadata"]["uid"])

    def _pods_of_deployment(self, namespace: str, deployment: str, *, terminating: bool = False) -> list[dict[str, Any]]:
        dep = self.store.get(DEPLOYMENT, namespace, deployment)
        if dep is None:
            return []
        pods = [p for rs in self._owned_replicasets(dep) for p in self._pods_of(rs)]
        return pods if terminating else [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def _deployment_of(self, rs: dict[str, Any]) -> tuple[str, str]:
        owner = next((r["name"] for r in rs["metadata"].get("ownerReferences") or []), "")
        return rs["metadata"]["namespace"], owner

    def _available(self, rs: dict[str, Any]) -> int:
        return sum(1 for p in self._pods_of(rs) if _pod_ready(p) and not p["metadata"].get("deletionTimestamp"))


# --- object builders ------------------------------------------------------------------------------------


def _retag(template: dict[str, Any], tag: str) -> dict[str, Any]:
    older = clone(template)
    for container in older["spec"].get("containers") or []:
        container["image"] = container["image"].rsplit(":", 1)[0] + ":" + tag
    return older


def _daprd_container(annotations: dict[str, str]) -> dict[str, Any]:
    """What the Dapr sidecar injector adds to an annotated pod (the parts the console reads)."""
    probe = {"httpGet": {"path": "/v1.0/healthz", "port": 3501, "scheme": "HTTP"}, "initialDelaySeconds": 3,
             "timeoutSeconds": 3, "periodSeconds": 6, "successThreshold": 1, "failureThreshold": 3}
    return {
        "name": "daprd", "image": DAPRD_IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["/daprd", "--mode", "kubernetes", "--app-id", annotations.get("dapr.io/app-id", "")],
        "ports": [{"containerPort": 3500, "name": "dapr-http", "protocol": "TCP"},
                  {"containerPort": 50001, "name": "dapr-grpc", "protocol": "TCP"},
                  {"containerPort": 9090, "name": "dapr-metrics", "protocol": "TCP"}],
        "livenessProbe": probe, "readinessProbe": dict(probe),
    }


def _container_status(container: dict[str, Any], now: float, *, ready: bool) -> dict[str, Any]:
    digest = hashlib.sha256(container["image"].encode()).hexdigest()
    return {
        "name": container["name"], "image": container["image"],
        "imageID": f"{container['image'].rsplit(':', 1)[0]}@sha256:{digest}",
        "containerID": "containerd://" + hashlib.sha256(f"{container['name']}{now}".encode()).hexdigest(),
        "ready": ready, "started": True, "restartCount": 0, "lastState": {},
        "state": {"running": {"startedAt": _stamp(now)}},
    }


def _crash_status(status: dict[str, Any], now: float, clock: Clock) -> None:
    status["restartCount"] = int(status.get("restartCount") or 0) + 1
    status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": clock.stamp(now - 2),
                                          "finishedAt": clock.stamp(now),
                                          "containerID": status.get("containerID", "")}}
    delay = min(300, 10 * 2 ** min(status["restartCount"] - 1, 5))
    status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {delay}s restarting failed "
                                   f"container={status['name']} pod=..."}}
    status["ready"] = status["started"] = False


def _pod_condition(type_: str, status: str, at: float, clock: Clock) -> dict[str, Any]:
    return {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": clock.stamp(at)}


def _pod_conditions(ready: bool, now: float, clock: Clock, old: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    previous = {c["type"]: c for c in old or []}
    conditions = []
    for type_ in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"):
        value = "True" if ready or type_ not in ("Ready", "ContainersReady") else "False"
        before = previous.get(type_)
        if before and before["status"] == value:
            conditions.append(before)
            continue
        condition = _pod_condition(type_, value, now, clock)
        if value == "False":
            condition.update(reason="ContainersNotReady", message="containers with unready status: [app]")
        conditions.append(condition)
    return conditions


def _set_condition(conditions: dict[str, dict[str, Any]], type_: str, status: str, reason: str, message: str,
                   now: float, *, touch: bool = False) -> None:
    """Set a Deployment condition: lastTransitionTime moves when status flips, lastUpdateTime when touched."""
    old = conditions.get(type_)
    stamp = _stamp(now)
    if old is None or old["status"] != status:
        conditions[type_] = {"type": type_, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
                             "reason": reason, "message": message}
        return
    if touch or old.get("reason") != reason or old.get("message") != message:
        old.update(reason=reason, message=message)
        if touch:
            old["lastUpdateTime"] = stamp


def _time(value: str | None) -> float:
    if not value:
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _owner(pod: dict[str, Any]) -> str | None:
    return next((r.get("uid") for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])
