"""The rules under deploy, verify-rollout and dlq-triage on crafted inputs: what the runbook runs in
tests/notebooks/ only meets once, checked here for each case."""

from __future__ import annotations

import pytest

from console.model.alerts import Alert, AlertReport
from console.runbooks.procedures import ProcedureError, deploy, dlq, verify


def _deployment(*images: str) -> dict[str, object]:
    return {"kind": "Deployment", "metadata": {"name": "backend"},
            "spec": {"template": {"spec": {"containers": [{"name": f"c{i}", "image": image}
                                                          for i, image in enumerate(images)]}}}}


def test_the_image_tag_goes_on_our_images_only() -> None:
    obj = deploy.with_image_tag(_deployment("fra.ocir.io/ns/todo/todo-backend:0.1.0", "ghcr.io/dapr/daprd:1.18.3",
                                            "todo-worker", "registry:5000/todo/todo-audit@sha256:abc"), "0.2.0")
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["fra.ocir.io/ns/todo/todo-backend:0.2.0", "ghcr.io/dapr/daprd:1.18.3",
                                                "todo-worker:0.2.0", "registry:5000/todo/todo-audit@sha256:abc"]


def test_restarts_climb_only_when_a_count_grows_while_watched() -> None:
    steady = verify.RestartWatch({("worker-1", "app"): 4}, {("worker-1", "app"): 4, ("new-1", "app"): 9}, 30.0)
    outcome = verify.restarts_outcome(steady)
    assert (outcome.ok, outcome.detail) == (True, "no restart in 30s (13 earlier restarts in total)")
    climbing = verify.restarts_outcome(verify.RestartWatch({("worker-1", "app"): 4}, {("worker-1", "app"): 6}, 30.0))
    assert (climbing.ok, climbing.detail) == (False, "restarted within 30s: worker-1/app 4 -> 6")


def test_an_alert_list_without_rules_proves_nothing() -> None:
    assert not verify.alerts_outcome(AlertReport((), 0), None).ok
    assert not verify.alerts_outcome(None, "prometheus at http://x: connection refused").ok
    pending = Alert("TodoScrapeTargetDown", "pending", {"severity": "critical"}, {"summary": "down"}, 1.0, 0.0)
    assert verify.alerts_outcome(AlertReport((pending,), 9), None).detail == \
        "9 alert rules evaluated, none firing, 1 pending"
    firing = Alert("TodoPodRestarting", "firing", {"severity": "warning"}, {"summary": "worker restarts"}, 1.0, 3.0)
    assert verify.alerts_outcome(AlertReport((firing,), 9), None).detail == \
        "TodoPodRestarting (warning): worker restarts"


def test_a_redrive_selection_needs_its_dlq_and_no_selection_is_a_report() -> None:
    assert dlq.selection("") is None
    assert dlq.selection("task-events-dlq", older_than_s=0.0) is None
    chosen = dlq.selection("task-events-dlq", ids=" a, 0/12 ,", event_type="todo.task.created.v1")
    assert chosen is not None
    assert (chosen.ids, chosen.event_type) == (frozenset({"a", "0/12"}), "todo.task.created.v1")
    with pytest.raises(ProcedureError, match=r"^dlq: name the dead-letter topic"):
        dlq.selection("", everything=True)
    assert dlq.plan_outcome([], "task-events-dlq").detail == "no waiting dead letter of task-events-dlq matches the selection"
