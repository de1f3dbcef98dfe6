"""What KEDA would do now: its Kafka scaler's metric and activity, and the replica count the HPA would ask for.

Follows KEDA 2.20's `pkg/scalers/kafka_scaler.go` line by line, on our own offsets:
- per partition (`getLagForPartition`): lag = end - committed. Without a committed offset,
  `offsetResetPolicy: latest` (KEDA's default) counts 1 and `earliest` counts the end offset itself (not
  end - log start: KEDA's own arithmetic), and `scaleToZeroOnInvalidOffset` makes either 0.
  `excludePersistentLag` counts 0 for a partition whose committed offset has not moved since the previous
  poll (`pollingInterval` ago); that lag still counts for activity.
- the metric (`getTotalLag`): the sum over the partitions: of `topic`, or, without a topic, of every topic
  the group has committed offsets on (`partitionLimitation` keeps only the listed partitions). Unless
  `allowIdleConsumers`, it is capped so that it asks for no more replicas than partitions (or than
  partitions with lag under `limitToPartitionsWithLag`); the cap tests `totalLag / lagThreshold >
  partitions` in integer division, so a metric up to partitions * threshold + threshold - 1 passes uncapped
  and the HPA's ceil() then asks for one replica more than there are partitions. We reproduce that.
  `ensureEvenDistributionOfPartitions` rounds up to the next factor of the partition count.
- activity: the lag including persistent lag > `activationLagThreshold`.
- the HPA (the metric is an AverageValue target of `lagThreshold`; kube's
  `GetExternalPerPodMetricReplicas`): desired = ceil(metric / lagThreshold), unless the current replica
  count is known and within the 10 % tolerance; the largest over the triggers; bounded by
  max(minReplicaCount, 1) and maxReplicaCount. With no trigger active and minReplicaCount 0, KEDA itself
  scales to `idleReplicaCount` or 0 (after `cooldownPeriod`). The HPA's scale-down stabilization (300 s by
  default) delays a lower count; this says what it asks for, not when it gets it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from console.model.kafka import TopicPartition
from console.model.lag import LagHistory
from console.model.wiring import KafkaTrigger, ScaledObjectInfo, Wiring

HPA_TOLERANCE = 0.1  # kube-controller-manager --horizontal-pod-autoscaler-tolerance


@dataclass(frozen=True)
class KedaPartition:
    """One partition as KEDA's scaler reads it; `previous_committed` is the committed offset one polling
    interval ago (for excludePersistentLag), None when unknown."""

    tp: TopicPartition
    committed: int | None
    end: int
    previous_committed: int | None = None


@dataclass(frozen=True)
class TriggerDecision:
    trigger: KafkaTrigger
    metric_name: str
    metric: int  # what the scaler reports to the HPA (after the cap)
    lag: int  # the summed lag before the cap
    lag_with_persistent: int  # what activity is judged on
    partitions: int
    partitions_with_lag: int
    cap: int | None  # the replica bound the metric was held to, when it was
    active: bool
    replicas: int  # ceil(metric / lagThreshold): what this trigger alone asks the HPA for


@dataclass(frozen=True)
class ScalingDecision:
    scaled_object: ScaledObjectInfo
    triggers: tuple[TriggerDecision, ...]
    active: bool
    desired: int
    current: int | None
    reason: str


def partition_lag(trigger: KafkaTrigger, p: KedaPartition) -> tuple[int, int]:
    """(lag, lag with persistent lag) of one partition, as `getLagForPartition` computes them."""
    if p.committed is None:
        if trigger.scale_to_zero_on_invalid_offset:
            return 0, 0
        lag = 1 if trigger.offset_reset_policy == "latest" else p.end
        return lag, lag
    lag = p.end - p.committed
    if trigger.exclude_persistent_lag and p.previous_committed == p.committed:
        return 0, lag
    return lag, lag


def trigger_decision(trigger: KafkaTrigger, partitions: Sequence[KedaPartition]) -> TriggerDecision:
    """The scaler's metric and activity for one trigger over the partitions it watches."""
    limited = [p for p in partitions
               if not trigger.partition_limitation or p.tp.partition in trigger.partition_limitation]
    lags = [partition_lag(trigger, p) for p in limited]
    total = sum(lag for lag, _ in lags)
    with_persistent = sum(lp for _, lp in lags)
    count = len(limited)
    with_lag = sum(1 for lag, _ in lags if lag > 0)
    threshold = trigger.lag_threshold
    metric, cap = total, None
    if not trigger.allow_idle_consumers or trigger.limit_to_partitions_with_lag \
            or trigger.ensure_even_distribution_of_partitions:
        upper = count
        if trigger.ensure_even_distribution_of_partitions:
            metric = _next_even_factor(total, count, threshold) * threshold
        if trigger.limit_to_partitions_with_lag:
            upper = with_lag
        if metric // threshold > upper:  # Go's int64 division, as in getTotalLag
            metric, cap = upper * threshold, upper
    name = f"kafka-{trigger.topic}" if trigger.topic else f"kafka-{trigger.consumer_group}-topics"
    return TriggerDecision(
        trigger=trigger, metric_name=name, metric=metric, lag=total, lag_with_persistent=with_persistent,
        partitions=count, partitions_with_lag=with_lag, cap=cap,
        active=with_persistent > trigger.activation_lag_threshold, replicas=math.ceil(metric / threshold))


def _next_even_factor(total: int, partitions: int, threshold: int) -> int:
    """`getNextFactorThatBalancesConsumersToTopicPartitions`: the smallest factor of the partition count
    whose consumers absorb the lag at `threshold` each, else the partition count."""
    factors = sorted({f for i in range(1, math.isqrt(partitions) + 1) if partitions % i == 0
                      for f in (i, partitions // i)}) if partitions > 0 else []
    return next((f for f in factors if f * threshold >= total), partitions)


def scaling_decision(so: ScaledObjectInfo, partitions_for: Callable[[KafkaTrigger], Sequence[KedaPartition]],
                     current: int | None = None) -> ScalingDecision:
    """What KEDA and the HPA would ask for now, given each trigger's partitions (`partitions_for`)."""
    decisions = tuple(trigger_decision(t, partitions_for(t)) for t in so.triggers)
    active = any(d.active for d in decisions)
    if not decisions:
        return ScalingDecision(so, decisions, False, so.min_replicas, current, "no kafka trigger")
    if not active and so.min_replicas == 0:
        idle = so.idle_replica_count or 0
        return ScalingDecision(so, decisions, False, idle, current,
                               f"no trigger active: KEDA scales to {idle} after the {so.cooldown_period}s cooldown")
    wanted = max(_hpa_replicas(d, current) for d in decisions)
    floor = max(so.min_replicas, 1)
    desired = min(max(wanted, floor), so.max_replicas)
    if desired != wanted:
        bound = "minReplicaCount" if wanted < floor else "maxReplicaCount"
        reason = f"the HPA asks for {wanted}, held to {bound} {desired}"
    else:
        reason = f"the HPA asks for {desired}: ceil(metric / lagThreshold), the largest over the triggers"
    return ScalingDecision(so, decisions, active, desired, current, reason)


def _hpa_replicas(d: TriggerDecision, current: int | None) -> int:
    """kube's GetExternalPerPodMetricReplicas: keep the current count within the tolerance."""
    threshold = d.trigger.lag_threshold
    if current:
        ratio = d.metric / (threshold * current)
        if abs(1.0 - ratio) <= HPA_TOLERANCE:
            return current
    return math.ceil(d.metric / threshold)


def partitions_from_history(history: LagHistory, trigger: KafkaTrigger, polling_interval: float
                            ) -> list[KedaPartition]:
    """The partitions a trigger watches, from the lag history: of its topic, or, without one, of every
    topic its group has a committed offset on; `previous_committed` is the sample one polling interval
    before the latest (what KEDA's previous poll saw)."""
    group = trigger.consumer_group
    latest = {tp: history.latest(group, tp) for tp in history.partitions(group)}
    if trigger.topic:
        chosen = [tp for tp in latest if tp.topic == trigger.topic]
    else:
        committed_topics = {tp.topic for tp, s in latest.items() if s is not None and s.committed is not None}
        chosen = [tp for tp in latest if tp.topic in committed_topics]
    found = []
    for tp in chosen:
        last = latest[tp]
        if last is None:
            continue
        earlier = history.latest(group, tp, before=last.at - polling_interval)
        found.append(KedaPartition(tp, last.committed, last.end, earlier.committed if earlier else None))
    return found


def decision_for_group(wiring: Wiring, history: LagHistory, group: str) -> ScalingDecision | None:
    """What KEDA would do for the consumer group `group`: the ScaledObject with a kafka trigger on that group,
    replayed on the lag history; None when no ScaledObject scales on it."""
    so = next((so for so in wiring.scaled_objects if any(t.consumer_group == group for t in so.triggers)), None)
    if so is None:
        return None
    return scaling_decision(so, lambda t: partitions_from_history(history, t, so.polling_interval))
