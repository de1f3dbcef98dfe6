"""How the platform is wired: which app consumes which topic, where its dead letters go, how KEDA scales it.

The answers live in the Dapr Subscriptions and the KEDA ScaledObjects. In the cluster they are read from
the API server (the Kubernetes source's cache); for the sandbox from the rendered prod overlay, which is
what the cluster would run. Both give plain Kubernetes objects as dicts, so one pure function reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# KEDA 2.x kafka scaler defaults (pkg/scalers/kafka_scaler.go): lagThreshold 10, activationLagThreshold 0.
KEDA_DEFAULT_LAG_THRESHOLD = 10
KEDA_DEFAULT_ACTIVATION_LAG_THRESHOLD = 0
# ScaledObject defaults (keda.sh/v1alpha1): pollingInterval 30 s, cooldownPeriod 300 s.
KEDA_DEFAULT_POLLING_INTERVAL = 30
KEDA_DEFAULT_COOLDOWN_PERIOD = 300


@dataclass(frozen=True)
class SubscriptionInfo:
    """A declarative Dapr Subscription: its consumer group is the app-id (pubsub `consumerGroup: {appID}`)."""

    name: str
    namespace: str
    app_id: str
    pubsub: str
    topic: str
    route: str | None
    dead_letter_topic: str | None
    bulk: bool


@dataclass(frozen=True)
class KafkaTrigger:
    """One `kafka` trigger of a ScaledObject, with KEDA's defaults where the manifest is silent
    (KEDA 2.20 `kafkaMetadata`; console.model.keda says what each one does)."""

    consumer_group: str
    topic: str | None
    lag_threshold: int
    activation_lag_threshold: int
    allow_idle_consumers: bool
    limit_to_partitions_with_lag: bool
    offset_reset_policy: str = "latest"
    scale_to_zero_on_invalid_offset: bool = False
    exclude_persistent_lag: bool = False
    ensure_even_distribution_of_partitions: bool = False
    partition_limitation: tuple[int, ...] = ()


@dataclass(frozen=True)
class ScaledObjectInfo:
    """A KEDA ScaledObject scaling one Deployment on Kafka lag."""

    name: str
    namespace: str
    target: str
    min_replicas: int
    max_replicas: int
    triggers: tuple[KafkaTrigger, ...]
    polling_interval: int = KEDA_DEFAULT_POLLING_INTERVAL
    cooldown_period: int = KEDA_DEFAULT_COOLDOWN_PERIOD
    idle_replica_count: int | None = None


@dataclass(frozen=True)
class Wiring:
    subscriptions: tuple[SubscriptionInfo, ...]
    scaled_objects: tuple[ScaledObjectInfo, ...]

    def dead_letter_topics(self) -> dict[str, list[SubscriptionInfo]]:
        """DLQ topic -> the subscriptions that send their failures there."""
        found: dict[str, list[SubscriptionInfo]] = {}
        for sub in self.subscriptions:
            if sub.dead_letter_topic:
                found.setdefault(sub.dead_letter_topic, []).append(sub)
        return found

    def consumed_topics(self) -> dict[str, set[str]]:
        """Consumer group (the app-id) -> the topics its Subscriptions consume."""
        found: dict[str, set[str]] = {}
        for sub in self.subscriptions:
            found.setdefault(sub.app_id, set()).add(sub.topic)
        return found

    def scaled_object_for(self, app_id: str) -> ScaledObjectInfo | None:
        return next((so for so in self.scaled_objects if so.target == app_id), None)




def read_wiring(objects: Iterable[Mapping[str, Any]]) -> Wiring:
    """Subscriptions and ScaledObjects among `objects` (anything else is ignored)."""
    subscriptions: list[SubscriptionInfo] = []
    scaled: list[ScaledObjectInfo] = []
    for obj in objects:
        kind, api = obj.get("kind"), str(obj.get("apiVersion", ""))
        if kind == "Subscription" and api.startswith("dapr.io/"):
            subscriptions.extend(_subscription(obj))
        elif kind == "ScaledObject" and api.startswith("keda.sh/"):
            scaled.append(_scaled_object(obj))
    return Wiring(tuple(subscriptions), tuple(scaled))


def _subscription(obj: Mapping[str, Any]) -> list[SubscriptionInfo]:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    routes = spec.get("routes") or {}
    route = routes.get("default") if isinstance(routes, Mapping) else None
    route = route or spec.get("route")  # v1alpha1
    bulk = bool((spec.get("bulkSubscribe") or {}).get("enabled"))
    return [
        SubscriptionInfo(
            name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")), app_id=str(app),
            pubsub=str(spec.get("pubsubname", "")), topic=str(spec.get("topic", "")), route=route,
            dead_letter_topic=spec.get("deadLetterTopic") or None, bulk=bulk)
        for app in (obj.get("scopes") or [])
    ]


def _scaled_object(obj: Mapping[str, Any]) -> ScaledObjectInfo:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    triggers = []
    for trig in spec.get("triggers") or []:
        if trig.get("type") != "kafka":
            continue
        md = trig.get("metadata") or {}
        triggers.append(KafkaTrigger(
            consumer_group=str(md.get("consumerGroup", "")),
            topic=md.get("topic") or None,
            lag_threshold=int(md.get("lagThreshold", KEDA_DEFAULT_LAG_THRESHOLD)),
            activation_lag_threshold=int(md.get("activationLagThreshold", KEDA_DEFAULT_ACTIVATION_LAG_THRESHOLD)),
            allow_idle_consumers=_flag(md, "allowIdleConsumers"),
            limit_to_partitions_with_lag=_flag(md, "limitToPartitionsWithLag"),
            offset_reset_policy=str(md.get("offsetResetPolicy", "latest")),
            scale_to_zero_on_invalid_offset=_flag(md, "scaleToZeroOnInvalidOffset"),
            exclude_persistent_lag=_flag(md, "excludePersistentLag"),
            ensure_even_distribution_of_partitions=_flag(md, "ensureEvenDistributionOfPartitions"),
            partition_limitation=_partition_list(str(md.get("partitionLimitation") or "")),
        ))
    idle = spec.get("idleReplicaCount")
    return ScaledObjectInfo(
        name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")),
        target=str((spec.get("scaleTargetRef") or {}).get("name", "")),
        min_replicas=int(spec.get("minReplicaCount", 0)), max_replicas=int(spec.get("maxReplicaCount", 100)),
        triggers=tuple(triggers),
        polling_interval=int(spec.get("pollingInterval", KEDA_DEFAULT_POLLING_INTERVAL)),
        cooldown_period=int(spec.get("cooldownPeriod", KEDA_DEFAULT_COOLDOWN_PERIOD)),
        idle_replica_count=None if idle is None else int(idle))


def _flag(metadata: Mapping[str, Any], name: str) -> bool:
    return str(metadata.get(name, "false")).lower() == "true"


def _partition_list(text: str) -> tuple[int, ...]:
    """KEDA's partitionLimitation: "1,2,10-20" (ranges inclusive); empty means every partition."""
    found: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        low, sep, high = part.partition("-")
        found.extend(range(int(low), int(high) + 1) if sep else [int(part)])
    return tuple(found)
