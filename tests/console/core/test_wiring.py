"""The platform's wiring read from the real prod overlay (rendered by kustomize) and from crafted objects."""

from __future__ import annotations

import pytest

from console.manifests.render import RenderError, render_overlay
from console.model.wiring import KEDA_DEFAULT_LAG_THRESHOLD, read_wiring
from tests.utils.required import missing


@pytest.fixture(scope="module")
def prod() -> list[dict]:
    try:
        return render_overlay("prod")
    except RenderError as exc:
        missing(f"kustomize cannot render the prod overlay: {exc}")


def test_every_consumer_and_its_dead_letter_topic_come_from_the_subscriptions(prod: list[dict]) -> None:
    wiring = read_wiring(prod)
    pairs = {(s.app_id, s.topic, s.dead_letter_topic) for s in wiring.subscriptions}
    assert pairs == {
        ("worker", "task-events", "task-events-dlq"),
        ("notification", "reminders", "reminders-dlq"),
        ("websocket", "task-updates", "task-updates-dlq"),
        ("audit", "task-events", "task-events-dlq"),
        ("audit", "reminders", "reminders-dlq"),
        ("audit", "task-updates", "task-updates-dlq"),
    }
    assert {s.app_id for s in wiring.dead_letter_topics()["task-events-dlq"]} == {"worker", "audit"}
    assert all(s.bulk for s in wiring.subscriptions if s.app_id == "audit")


def test_keda_triggers_of_the_prod_overlay(prod: list[dict]) -> None:
    worker = read_wiring(prod).scaled_object_for("worker")
    assert worker is not None
    assert (worker.min_replicas, worker.max_replicas) == (1, 3)
    assert [(t.consumer_group, t.topic, t.lag_threshold) for t in worker.triggers] == [("worker", "task-events", 50)]
    assert read_wiring(prod).scaled_object_for("websocket") is None


def test_keda_defaults_apply_where_the_manifest_is_silent() -> None:
    wiring = read_wiring([{
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x", "namespace": "n"},
        "spec": {"scaleTargetRef": {"name": "x"}, "triggers": [
            {"type": "kafka", "metadata": {"consumerGroup": "g"}}, {"type": "cpu", "metadata": {"value": "50"}}]},
    }, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ignored"}}])
    (so,) = wiring.scaled_objects
    assert (so.min_replicas, so.max_replicas) == (0, 100)
    (trigger,) = so.triggers
    assert trigger.topic is None
    assert (trigger.lag_threshold, trigger.activation_lag_threshold) == (KEDA_DEFAULT_LAG_THRESHOLD, 0)
    assert not trigger.allow_idle_consumers
    assert wiring.subscriptions == ()
