"""kubectl's rollout judgement, history and its restart/undo patches, on crafted Deployments and ReplicaSets."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from console.model.rollout import (
    RolloutError,
    RolloutState,
    plan_undo,
    restart_patch,
    rollout_history,
    rollout_status,
)

UID = "8d1e6a9c-dep"


def deployment(*, replicas: int = 2, generation: int = 4, observed: int = 4, updated: int = 2, total: int = 2,
               available: int = 2, progressing: tuple[str, str] = ("True", "NewReplicaSetAvailable"),
               available_condition: str = "True", image: str = "todo-worker:0.1.0", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "worker", "namespace": "todo-app", "uid": UID, "generation": generation,
                     "annotations": {"deployment.kubernetes.io/revision": "3",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                                     "kubernetes.io/change-cause": "deploy 0.1.0"}},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": 600, "selector": {"matchLabels": {"app": "worker"}},
                 "template": template(image), **spec},
        "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                   "readyReplicas": available, "availableReplicas": available,
                   "conditions": [
                       {"type": "Available", "status": available_condition,
                        "reason": "MinimumReplicasAvailable" if available_condition == "True"
                        else "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."},
                       {"type": "Progressing", "status": progressing[0], "reason": progressing[1],
                        "message": 'ReplicaSet "worker-abc" has timed out progressing.',
                        "lastUpdateTime": "2025-03-01T10:00:00Z", "lastTransitionTime": "2025-03-01T09:00:00Z"}]},
    }


def template(image: str, restarted: str | None = None, hash_label: str | None = None) -> dict[str, Any]:
    labels = {"app": "worker"}
    if hash_label:
        labels["pod-template-hash"] = hash_label
    meta: dict[str, Any] = {"labels": labels}
    if restarted:
        meta["annotations"] = {"kubectl.kubernetes.io/restartedAt": restarted}
    return {"metadata": meta, "spec": {"containers": [{"name": "app", "image": image}]}}


def replicaset(revision: int, image: str, *, owner: str = UID, cause: str | None = None, replicas: int = 0,
               restarted: str | None = None, history: str | None = None) -> dict[str, Any]:
    annotations = {"deployment.kubernetes.io/revision": str(revision), "deployment.kubernetes.io/desired-replicas": "2"}
    if cause:
        annotations["kubernetes.io/change-cause"] = cause
    if history:
        annotations["deployment.kubernetes.io/revision-history"] = history
    return {
        "metadata": {"name": f"worker-r{revision}", "namespace": "todo-app", "annotations": annotations,
                     "creationTimestamp": f"2025-03-0{revision}T00:00:00Z",
                     "ownerReferences": [{"kind": "Deployment", "name": "worker", "uid": owner, "controller": True}]},
        "spec": {"replicas": replicas, "template": template(image, restarted, hash_label=f"h{revision}")},
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


@pytest.mark.parametrize(("overrides", "state", "message"), [
    ({}, RolloutState.COMPLETE, 'deployment "worker" successfully rolled out'),
    ({"generation": 5}, RolloutState.PENDING, "Waiting for deployment spec update to be observed..."),
    ({"updated": 1, "progressing": ("True", "ReplicaSetUpdated")}, RolloutState.PROGRESSING,
     'Waiting for deployment "worker" rollout to finish: 1 out of 2 new replicas have been updated...'),
    ({"total": 3, "progressing": ("True", "ReplicaSetUpdated")}, RolloutState.PROGRESSING,
     'Waiting for deployment "worker" rollout to finish: 1 old replicas are pending termination...'),
    ({"available": 1, "progressing": ("True", "ReplicaSetUpdated")}, RolloutState.PROGRESSING,
     'Waiting for deployment "worker" rollout to finish: 1 of 2 updated replicas are available...'),
    ({"updated": 1, "total": 3, "progressing": ("False", "ProgressDeadlineExceeded")}, RolloutState.FAILED,
     'deployment "worker" exceeded its progress deadline'),
])
def test_status_is_kubectls_verdict(overrides: dict[str, Any], state: RolloutState, message: str) -> None:
    status = rollout_status(deployment(**overrides))
    assert (status.state, status.message) == (state, message)
    assert status.problem == (state is RolloutState.FAILED)


def test_the_deadline_is_only_read_once_the_generation_is_observed() -> None:
    status = rollout_status(deployment(generation=5, progressing=("False", "ProgressDeadlineExceeded")))
    assert status.state is RolloutState.PENDING


def test_a_finished_rollout_that_lost_replicas_is_degraded_not_waiting() -> None:
    status = rollout_status(deployment(available=1, available_condition="False"))
    assert status.state is RolloutState.DEGRADED
    assert status.problem
    assert "1 of 2 replicas are unavailable (MinimumReplicasUnavailable" in status.message


def test_status_facts_and_defaults() -> None:
    dep = deployment(paused=True)
    del dep["spec"]["replicas"]  # the API server defaults it to 1
    dep["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2025-03-02T00:00:00Z"}
    status = rollout_status(dep)
    assert (status.desired, status.revision, status.images, status.paused) == (1, 3, ("todo-worker:0.1.0",), True)
    assert status.restarted_at == "2025-03-02T00:00:00Z"
    assert status.state is RolloutState.PAUSED
    assert "kubectl rollout resume deployment/worker" in status.message
    assert [c.type for c in status.conditions] == ["Available", "Progressing"]


def test_history_lists_owned_replicasets_by_revision() -> None:
    sets = [replicaset(3, "todo-worker:0.1.0", cause="deploy 0.1.0", replicas=2, restarted="2025-03-03T00:00:00Z"),
            replicaset(1, "todo-worker:0.0.8", cause="deploy 0.0.8"),
            replicaset(2, "todo-worker:0.0.9", history="1"),
            replicaset(9, "other:1", owner="someone-else")]
    history = rollout_history(deployment(), sets)
    assert [(r.revision, r.images, r.change_cause, r.current) for r in history] == [
        (1, ("todo-worker:0.0.8",), "deploy 0.0.8", False),
        (2, ("todo-worker:0.0.9",), None, False),
        (3, ("todo-worker:0.1.0",), "deploy 0.1.0", True)]
    assert history[1].earlier_revisions == (1,)
    assert history[2].restarted_at == "2025-03-03T00:00:00Z"
    assert (history[2].replicas, history[2].ready) == (2, 2)


def test_restart_patch_is_kubectls() -> None:
    patch = restart_patch(deployment(), 1_740_000_000)
    stamp = patch["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert list(patch) == ["spec"]
    assert stamp[:4] == "2025"
    assert stamp.endswith("Z") or stamp[-6] in "+-"  # Go's time.RFC3339 in local time
    with pytest.raises(RolloutError, match="can't restart paused deployment"):
        restart_patch(deployment(paused=True), 0)


def test_undo_to_the_previous_revision_builds_kubectls_json_patch() -> None:
    sets = [replicaset(3, "todo-worker:0.1.0"), replicaset(2, "todo-worker:0.0.9", cause="deploy 0.0.9"),
            replicaset(1, "todo-worker:0.0.8")]
    plan = plan_undo(deployment(), sets)
    assert (plan.from_revision, plan.to_revision, plan.replicaset, plan.skipped) == (3, 2, "worker-r2", False)
    replace_template, replace_annotations = plan.patch
    assert replace_template["op"] == replace_annotations["op"] == "replace"
    assert replace_template["path"] == "/spec/template"
    assert replace_template["value"]["metadata"]["labels"] == {"app": "worker"}  # pod-template-hash removed
    assert replace_template["value"]["spec"]["containers"][0]["image"] == "todo-worker:0.0.9"
    # Kept from the Deployment: revision and last-applied; copied from the ReplicaSet: the rest.
    assert replace_annotations == {"op": "replace", "path": "/metadata/annotations", "value": {
        "deployment.kubernetes.io/revision": "3", "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        "kubernetes.io/change-cause": "deploy 0.0.9"}}
    assert "pod-template-hash" in sets[1]["spec"]["template"]["metadata"]["labels"]  # input untouched


def test_undo_refusals_are_kubectls_words() -> None:
    sets = [replicaset(3, "todo-worker:0.1.0"), replicaset(2, "todo-worker:0.0.9")]
    with pytest.raises(RolloutError, match="unable to find specified revision 7 in history"):
        plan_undo(deployment(), sets, 7)
    with pytest.raises(RolloutError, match='no rollout history found for deployment "worker"'):
        plan_undo(deployment(), sets[:1])
    with pytest.raises(RolloutError, match="cannot rollback a paused deployment"):
        plan_undo(deployment(paused=True), sets, 2)


def test_undo_to_the_current_template_is_skipped() -> None:
    current = replicaset(3, "todo-worker:0.1.0")
    dep = deployment()
    dep["spec"]["template"] = copy.deepcopy(current["spec"]["template"])
    del dep["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    plan = plan_undo(dep, [current, replicaset(2, "todo-worker:0.0.9")], 3)
    assert plan.skipped
    assert plan.patch == ()
    assert plan.summary == "skipped rollback (current template already matches revision 3)"
