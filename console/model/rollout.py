"""Rollouts the way kubectl judges them: status, history from ReplicaSets, and the restart and undo patches.

An operator who runs `todo-console rollout status` and then `kubectl rollout status` must get the same
verdict, so the judgement follows kubectl's DeploymentStatusViewer (k8s.io/kubectl/pkg/polymorphichelpers,
rollout_status.go): the controller must have observed the latest generation; a Progressing condition with
reason ProgressDeadlineExceeded is a failed rollout; otherwise the rollout waits for updated, then old
replicas gone, then available. One state kubectl cannot name is added: a rollout that completed
(Progressing reason NewReplicaSetAvailable) and later lost availability (a pod crash-looping) is
"degraded", because kubectl would wait on it forever and an operator needs to hear about it now.

Restart and undo are computed here as the exact patches kubectl sends (objectrestarter.go, rollback.go),
so the Kubernetes source only transports them and the rules are tested on crafted objects.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from console.model.conditions import Condition, conditions_of, find, parse_time

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"

# Deployment annotations a rollback keeps from the Deployment instead of copying them from the
# ReplicaSet (kubectl rollback.go `annotationsToSkip`).
ANNOTATIONS_KEPT_ON_UNDO = frozenset({
    LAST_APPLIED_ANNOTATION, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, ROLLBACK_TO_ANNOTATION,
})


class RolloutError(ValueError):
    """A rollout action that cannot be done as asked (paused, unknown revision): kubectl's own words."""


class RolloutState(StrEnum):
    COMPLETE = "complete"        # kubectl: successfully rolled out
    PROGRESSING = "progressing"  # kubectl: Waiting for deployment ... rollout to finish
    PENDING = "pending"          # kubectl: Waiting for deployment spec update to be observed
    FAILED = "failed"            # kubectl: exceeded its progress deadline
    DEGRADED = "degraded"        # rolled out earlier, replicas unavailable since (kubectl would wait forever)
    PAUSED = "paused"            # spec.paused: nothing moves until `rollout resume`


PROBLEM_STATES = frozenset({RolloutState.FAILED, RolloutState.DEGRADED})


@dataclass(frozen=True)
class RolloutStatus:
    name: str
    namespace: str
    state: RolloutState
    message: str
    desired: int
    replicas: int
    updated: int
    ready: int
    available: int
    unavailable: int
    generation: int
    observed_generation: int
    revision: int | None
    images: tuple[str, ...]
    paused: bool
    progress_deadline_s: int | None
    restarted_at: str | None
    conditions: tuple[Condition, ...]

    @property
    def done(self) -> bool:
        return self.state is RolloutState.COMPLETE

    @property
    def problem(self) -> bool:
        return self.state in PROBLEM_STATES


@dataclass(frozen=True)
class Revision:
    """One entry of `rollout history`: a ReplicaSet the Deployment owns, with its revision number."""

    revision: int
    replicaset: str
    images: tuple[str, ...]
    change_cause: str | None
    created_at: float | None
    replicas: int
    ready: int
    current: bool
    restarted_at: str | None
    earlier_revisions: tuple[int, ...]  # numbers this ReplicaSet had before it was rolled back to


@dataclass(frozen=True)
class UndoPlan:
    """What `rollout undo` will do: the JSON patch kubectl sends, or why it is skipped."""

    deployment: str
    from_revision: int | None
    to_revision: int
    replicaset: str
    images: tuple[str, ...]
    skipped: bool
    patch: tuple[dict[str, Any], ...]

    @property
    def summary(self) -> str:
        if self.skipped:
            return f"skipped rollback (current template already matches revision {self.to_revision})"
        return f"roll back from revision {self.from_revision} to revision {self.to_revision}"


# --- status ------------------------------------------------------------------------------------------


def rollout_status(deployment: Mapping[str, Any]) -> RolloutStatus:
    """kubectl's verdict on one Deployment, plus the facts a table shows."""
    meta, spec, status = _meta(deployment), deployment.get("spec") or {}, deployment.get("status") or {}
    name = str(meta.get("name", ""))
    desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    replicas = int(status.get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    conditions = conditions_of(deployment)
    paused = bool(spec.get("paused"))
    state, message = _judge(name, desired, replicas, updated, available, generation, observed, paused, conditions)
    template = spec.get("template") or {}
    return RolloutStatus(
        name=name, namespace=str(meta.get("namespace", "")), state=state, message=message,
        desired=desired, replicas=replicas, updated=updated, ready=int(status.get("readyReplicas") or 0),
        available=available, unavailable=int(status.get("unavailableReplicas") or 0),
        generation=generation, observed_generation=observed, revision=revision_of(deployment),
        images=template_images(template), paused=paused,
        progress_deadline_s=int(spec["progressDeadlineSeconds"]) if spec.get("progressDeadlineSeconds") else None,
        restarted_at=((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT_ANNOTATION),
        conditions=conditions,
    )


def _judge(name: str, desired: int, replicas: int, updated: int, available: int, generation: int,
           observed: int, paused: bool, conditions: tuple[Condition, ...]) -> tuple[RolloutState, str]:
    if generation > observed:
        return RolloutState.PENDING, "Waiting for deployment spec update to be observed..."
    progressing = find(conditions, "Progressing")
    if progressing is not None and progressing.reason == TIMED_OUT_REASON:
        return RolloutState.FAILED, f'deployment "{name}" exceeded its progress deadline'
    if paused:
        return RolloutState.PAUSED, f'deployment "{name}" is paused (kubectl rollout resume deployment/{name})'
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < desired:
        return RolloutState.PROGRESSING, waiting + f"{updated} out of {desired} new replicas have been updated..."
    if replicas > updated:
        return RolloutState.PROGRESSING, waiting + f"{replicas - updated} old replicas are pending termination..."
    if available < updated:
        if progressing is not None and progressing.reason == NEW_RS_AVAILABLE_REASON:
            why = find(conditions, "Available")
            detail = f" ({why.reason}: {why.message})" if why is not None and why.false else ""
            return (RolloutState.DEGRADED, f'deployment "{name}" rolled out, but {updated - available} of '
                    f"{updated} replicas are unavailable{detail}")
        return RolloutState.PROGRESSING, waiting + f"{available} of {updated} updated replicas are available..."
    return RolloutState.COMPLETE, f'deployment "{name}" successfully rolled out'


# --- history -----------------------------------------------------------------------------------------


def revision_of(obj: Mapping[str, Any]) -> int | None:
    """The `deployment.kubernetes.io/revision` annotation, or None when absent or not a number."""
    raw = (_meta(obj).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def owned_replicasets(deployment: Mapping[str, Any], replicasets: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """ReplicaSets controlled by this Deployment (ownerReference uid), as kubectl's GetAllReplicaSets keeps them."""
    meta = _meta(deployment)
    uid, namespace = meta.get("uid"), meta.get("namespace")
    owned = []
    for rs in replicasets:
        rs_meta = _meta(rs)
        if rs_meta.get("namespace") != namespace:
            continue
        refs = rs_meta.get("ownerReferences") or []
        if any(r.get("controller") and r.get("uid") == uid and r.get("kind") == "Deployment" for r in refs):
            owned.append(rs)
    return owned


def rollout_history(deployment: Mapping[str, Any], replicasets: Iterable[Mapping[str, Any]]) -> list[Revision]:
    """Every revision the Deployment still has a ReplicaSet for, oldest first (`kubectl rollout history`)."""
    current = revision_of(deployment)
    revisions = []
    for rs in owned_replicasets(deployment, replicasets):
        number = revision_of(rs)
        if number is None:
            continue
        meta, status = _meta(rs), rs.get("status") or {}
        annotations = meta.get("annotations") or {}
        template = (rs.get("spec") or {}).get("template") or {}
        revisions.append(Revision(
            revision=number, replicaset=str(meta.get("name", "")), images=template_images(template),
            change_cause=annotations.get(CHANGE_CAUSE_ANNOTATION) or None,
            created_at=parse_time(meta.get("creationTimestamp")),
            replicas=int(status.get("replicas") or 0), ready=int(status.get("readyReplicas") or 0),
            current=number == current,
            restarted_at=((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT_ANNOTATION),
            earlier_revisions=_int_list(annotations.get(REVISION_HISTORY_ANNOTATION)),
        ))
    return sorted(revisions, key=lambda r: r.revision)


def template_images(template: Mapping[str, Any]) -> tuple[str, ...]:
    containers = (template.get("spec") or {}).get("containers") or []
    return tuple(str(c.get("image", "")) for c in containers)


# --- restart and undo: kubectl's patches ---------------------------------------------------------------


def short_image(image: str) -> str:
    """`iad.ocir.io/tenancy/todo/todo-worker:0.1.0` -> `todo-worker:0.1.0` (a table keeps the name)."""
    return image.rsplit("/", 1)[-1]


def image_version(image: str) -> str:
    """What an image says about the version it runs: `.../todo-worker:0.1.0` -> `0.1.0`, a digest -> its first
    12 hex digits, no tag -> `latest` (what the runtime pulls)."""
    name = short_image(image)
    if "@" in name:
        return name.split("@", 1)[1].split(":", 1)[-1][:12]
    return name.split(":", 1)[1] if ":" in name else "latest"


def restart_patch(deployment: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The strategic-merge patch `kubectl rollout restart` sends: a new restartedAt on the pod template.

    kubectl stamps `time.Now().Format(time.RFC3339)` (local time with its offset); a changed template
    makes the Deployment controller start a new ReplicaSet, i.e. replace every pod.
    """
    if (deployment.get("spec") or {}).get("paused"):
        raise RolloutError("can't restart paused deployment (run rollout resume first)")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: rfc3339_local(now)}}}}}


def plan_undo(deployment: Mapping[str, Any], replicasets: Sequence[Mapping[str, Any]], to_revision: int = 0) -> UndoPlan:
    """kubectl's DeploymentRollbacker: find the ReplicaSet of `to_revision` (0: the previous one), refuse a
    paused Deployment, skip when the template already matches, else build the JSON patch that puts that
    ReplicaSet's template (without its pod-template-hash label) and annotations back on the Deployment."""
    name = str(_meta(deployment).get("name", ""))
    if to_revision < 0:
        raise RolloutError(f"unable to find specified revision {to_revision} in history")
    target = _replicaset_for_revision(name, owned_replicasets(deployment, replicasets), to_revision)
    if (deployment.get("spec") or {}).get("paused"):
        raise RolloutError(f"you cannot rollback a paused deployment; resume it first with "
                           f"'kubectl rollout resume deployment/{name}' and try again")
    template = copy.deepcopy((target.get("spec") or {}).get("template") or {})
    skipped = UndoPlan(deployment=name, from_revision=revision_of(deployment), to_revision=revision_of(target) or 0,
                       replicaset=str(_meta(target).get("name", "")), images=template_images(template),
                       skipped=True, patch=())
    if _without_hash(template) == _without_hash((deployment.get("spec") or {}).get("template") or {}):
        return skipped
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    current = _meta(deployment).get("annotations") or {}
    annotations = {k: v for k, v in current.items() if k in ANNOTATIONS_KEPT_ON_UNDO}
    annotations.update({k: v for k, v in (_meta(target).get("annotations") or {}).items()
                        if k not in ANNOTATIONS_KEPT_ON_UNDO})
    patch = ({"op": "replace", "path": "/spec/template", "value": template},
             {"op": "replace", "path": "/metadata/annotations", "value": annotations})
    return dataclasses.replace(skipped, skipped=False, patch=patch)


def _replicaset_for_revision(name: str, owned: list[Mapping[str, Any]], to_revision: int) -> Mapping[str, Any]:
    numbered = sorted(((revision_of(rs), rs) for rs in owned if revision_of(rs) is not None),
                      key=lambda pair: pair[0] or 0)
    if to_revision > 0:
        for number, rs in numbered:
            if number == to_revision:
                return rs
        raise RolloutError(f"unable to find specified revision {to_revision} in history")
    if len(numbered) < 2:
        raise RolloutError(f'no rollout history found for deployment "{name}"')
    return numbered[-2][1]


def _without_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    plain = copy.deepcopy(dict(template))
    labels = (plain.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return plain


def rfc3339_local(epoch: float) -> str:
    """Go's time.RFC3339 in local time: `2025-01-02T03:04:05+01:00`, `Z` for UTC."""
    text = datetime.fromtimestamp(int(epoch)).astimezone().isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def _int_list(raw: object) -> tuple[int, ...]:
    if not isinstance(raw, str):
        return ()
    return tuple(int(p) for p in raw.split(",") if p.strip().isdigit())


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}
