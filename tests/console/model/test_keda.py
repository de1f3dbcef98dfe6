"""What KEDA would do, on crafted cases, each checked against KEDA 2.20's kafka scaler (pkg/scalers/kafka_scaler.go:
getLagForPartition, getTotalLag, GetMetricsAndActivity), the scale executor (scale_scaledobjects.go) and the HPA's
GetExternalPerPodMetricReplicas."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from console.model.kafka import GroupOffsets, LagSnapshot, PartitionOffsets, TopicPartition
from console.model.keda import (
    KedaPartition,
    partition_lag,
    partitions_from_history,
    scaling_decision,
    trigger_decision,
)
from console.model.lag import LagHistory
from console.model.wiring import KafkaTrigger, ScaledObjectInfo, read_wiring

TOPIC = "task-events"


def trigger(**kw) -> KafkaTrigger:
    base = KafkaTrigger(consumer_group="worker", topic=TOPIC, lag_threshold=50, activation_lag_threshold=0,
                        allow_idle_consumers=False, limit_to_partitions_with_lag=False)
    return replace(base, **kw)


def parts(*lags: int | None, end: int = 1000) -> list[KedaPartition]:
    """One partition per lag (None: no committed offset)."""
    return [KedaPartition(TopicPartition(TOPIC, i), None if lag is None else end - lag, end) for i, lag in enumerate(lags)]


def so(*triggers: KafkaTrigger, min_replicas: int = 1, max_replicas: int = 3, **kw) -> ScaledObjectInfo:
    return ScaledObjectInfo("worker", "todo-app", "worker", min_replicas, max_replicas, triggers, **kw)


def test_the_metric_is_the_lag_summed_over_partitions() -> None:
    d = trigger_decision(trigger(), parts(30, 40, 50))
    assert (d.metric, d.lag, d.partitions, d.partitions_with_lag, d.cap, d.replicas) == (120, 120, 3, 3, None, 3)
    assert d.metric_name == "kafka-task-events"
    assert trigger_decision(trigger(topic=None), parts(1)).metric_name == "kafka-worker-topics"


def test_without_idle_consumers_the_metric_is_capped_at_one_replica_per_partition() -> None:
    d = trigger_decision(trigger(), parts(400, 300, 300))
    assert (d.lag, d.metric, d.cap, d.replicas) == (1000, 150, 3, 3)


def test_the_cap_uses_integer_division_so_one_replica_more_than_partitions_gets_through() -> None:
    """KEDA tests totalLag/lagThreshold > partitions in int64: 170/50 == 3 is not > 3, so 170 passes and the
    HPA's ceil(170/50) asks for 4 replicas on 3 partitions."""
    d = trigger_decision(trigger(), parts(60, 60, 50))
    assert (d.metric, d.cap, d.replicas) == (170, None, 4)
    assert scaling_decision(so(trigger(), max_replicas=10), lambda t: parts(60, 60, 50)).desired == 4


def test_allow_idle_consumers_lifts_the_cap_and_max_replicas_bounds_the_hpa() -> None:
    d = trigger_decision(trigger(allow_idle_consumers=True), parts(400, 300, 300))
    assert (d.metric, d.cap, d.replicas) == (1000, None, 20)
    decision = scaling_decision(so(trigger(allow_idle_consumers=True)), lambda t: parts(400, 300, 300))
    assert decision.desired == 3
    assert "held to maxReplicaCount 3" in decision.reason


def test_limit_to_partitions_with_lag_caps_at_the_partitions_that_have_some() -> None:
    d = trigger_decision(trigger(limit_to_partitions_with_lag=True), parts(1000, 0, 0))
    assert (d.metric, d.cap, d.partitions_with_lag, d.replicas) == (50, 1, 1, 1)


def test_ensure_even_distribution_rounds_up_to_a_factor_of_the_partition_count() -> None:
    twelve = [KedaPartition(TopicPartition(TOPIC, i), 100 - (35 if i == 0 else 0), 100) for i in range(12)]
    d = trigger_decision(trigger(lag_threshold=10, ensure_even_distribution_of_partitions=True), twelve)
    assert (d.lag, d.metric, d.replicas) == (35, 40, 4)  # factors 1,2,3,4,6,12: 4 * 10 >= 35
    all_lag = [KedaPartition(TopicPartition(TOPIC, i), 0, 100) for i in range(12)]
    d = trigger_decision(trigger(lag_threshold=10, ensure_even_distribution_of_partitions=True), all_lag)
    assert (d.metric, d.replicas) == (120, 12)


def test_partitions_without_a_committed_offset_follow_offset_reset_policy() -> None:
    p = KedaPartition(TopicPartition(TOPIC, 0), None, 500)
    assert partition_lag(trigger(offset_reset_policy="latest"), p) == (1, 1)
    assert partition_lag(trigger(offset_reset_policy="earliest"), p) == (500, 500)  # the end offset itself
    assert partition_lag(trigger(offset_reset_policy="earliest", scale_to_zero_on_invalid_offset=True), p) == (0, 0)
    assert partition_lag(trigger(scale_to_zero_on_invalid_offset=True), p) == (0, 0)


def test_exclude_persistent_lag_drops_a_partition_that_did_not_move_but_keeps_it_for_activity() -> None:
    stuck = KedaPartition(TopicPartition(TOPIC, 0), 100, 400, previous_committed=100)
    moving = KedaPartition(TopicPartition(TOPIC, 1), 300, 400, previous_committed=250)
    d = trigger_decision(trigger(exclude_persistent_lag=True, activation_lag_threshold=350), [stuck, moving])
    assert (d.metric, d.lag_with_persistent, d.active) == (100, 400, True)
    assert trigger_decision(trigger(allow_idle_consumers=True), [stuck, moving]).metric == 400


def test_partition_limitation_keeps_only_the_listed_partitions() -> None:
    d = trigger_decision(trigger(partition_limitation=(0, 2)), parts(10, 20, 30))
    assert (d.lag, d.partitions) == (40, 2)


def test_activation_is_strictly_above_the_threshold_and_min_zero_scales_to_zero() -> None:
    t = trigger(activation_lag_threshold=10)
    assert not trigger_decision(t, parts(10)).active
    assert trigger_decision(t, parts(11)).active
    idle = scaling_decision(so(t, min_replicas=0, cooldown_period=120), lambda _t: parts(10))
    assert (idle.active, idle.desired) == (False, 0)
    assert "after the 120s cooldown" in idle.reason
    assert scaling_decision(so(t, min_replicas=0, idle_replica_count=1), lambda _t: parts(10)).desired == 1
    woken = scaling_decision(so(t, min_replicas=0), lambda _t: parts(11))
    assert (woken.active, woken.desired) == (True, 1)


def test_min_replicas_hold_when_nothing_is_active() -> None:
    d = scaling_decision(so(trigger(), min_replicas=1), lambda _t: parts(0, 0, 0))
    assert (d.active, d.desired) == (False, 1)


def test_the_hpa_keeps_the_current_count_within_its_tolerance() -> None:
    within = scaling_decision(so(trigger(allow_idle_consumers=True), max_replicas=10), lambda _t: parts(105),
                              current=2)
    assert within.desired == 2  # 105 / (50 * 2) = 1.05, within 10 %
    beyond = scaling_decision(so(trigger(allow_idle_consumers=True), max_replicas=10), lambda _t: parts(130),
                              current=2)
    assert beyond.desired == math.ceil(130 / 50)


def test_several_triggers_take_the_largest_ask() -> None:
    """The audit ScaledObject has a trigger per topic; the HPA takes the largest desired count."""
    a = trigger(consumer_group="audit", topic="task-events", lag_threshold=100)
    b = trigger(consumer_group="audit", topic="task-updates", lag_threshold=100)
    d = scaling_decision(so(a, b), lambda t: parts(150) if t.topic == "task-events" else parts(250, 0, 0))
    assert [x.replicas for x in d.triggers] == [2, 3]
    assert d.desired == 3
    assert scaling_decision(so(), lambda _t: []).reason == "no kafka trigger"


def test_partitions_come_from_the_lag_history_with_the_previous_poll() -> None:
    h = LagHistory()
    tps = [TopicPartition(TOPIC, i) for i in range(3)] + [TopicPartition("reminders", 0)]
    for t, committed in ((0, 10), (10, 10), (20, 30)):
        h.add(LagSnapshot(1000.0 + t, {tp: PartitionOffsets(0, 100) for tp in tps},
                          {"worker": GroupOffsets("worker", committed={tps[0]: committed, tps[1]: 100, tps[2]: None,
                                                                       tps[3]: 5})}))
    found = partitions_from_history(h, trigger(), polling_interval=15)
    assert [(p.tp.partition, p.committed, p.previous_committed) for p in found] == [(0, 30, 10), (1, 100, 100),
                                                                                   (2, None, None)]
    no_topic = partitions_from_history(h, trigger(topic=None), polling_interval=15)
    assert {p.tp.topic for p in no_topic} == {TOPIC, "reminders"}


@pytest.fixture(scope="module")
def prod_wiring():
    from console.manifests.render import RenderError, render_overlay
    from tests.utils.required import missing

    try:
        return read_wiring(render_overlay("prod"))
    except RenderError as exc:
        missing(f"kustomize cannot render the prod overlay: {exc}")


def test_the_prod_scaled_objects_read_with_every_setting_the_model_uses(prod_wiring) -> None:
    worker = prod_wiring.scaled_object_for("worker")
    assert worker is not None
    (t,) = worker.triggers
    assert (t.offset_reset_policy, t.allow_idle_consumers, worker.polling_interval, worker.cooldown_period) == (
        "earliest", False, 15, 300)
    d = scaling_decision(worker, lambda _t: parts(200, 0, None, end=300))  # earliest: no commit counts 300
    assert [(x.lag, x.metric, x.replicas) for x in d.triggers] == [(200 + 0 + 300, 150, 3)]
    assert d.desired == 3


def test_partition_limitation_is_read_as_keda_parses_it() -> None:
    wiring = read_wiring([{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
                           "spec": {"scaleTargetRef": {"name": "x"}, "idleReplicaCount": 0, "triggers": [
                               {"type": "kafka", "metadata": {"consumerGroup": "g", "topic": "t",
                                                              "partitionLimitation": "1, 2,10-12"}}]}}])
    (x,) = wiring.scaled_objects
    assert x.triggers[0].partition_limitation == (1, 2, 10, 11, 12)
    assert x.idle_replica_count == 0
