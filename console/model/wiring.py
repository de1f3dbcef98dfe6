"""How the platform is wired: which app consumes which topic, where its dead letters go, how KEDA scales it.

The answers live in the Dapr Subscriptions and the KEDA ScaledObjects. In the cluster they are read from
the API server (the Kubernetes source's cache); for the sandbox from the rendered prod overlay, which is
what the cluster would run. Both give plain Kubernetes objects as dicts, so one pure function reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


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
    """One `kafka` trigger of a ScaledObject, with KEDA's defaults where the manifest is silent."""

    consumer_group: str
    topic: str | None
    lag_threshold: int
    activation_lag_threshold: int
    allow_idle_consumers: bool
    limit_to_partitions_with_lag: bool


@dataclass(frozen=True)
class ScaledObjectInfo:
    """A KEDA ScaledObject scaling one Deployment on Kafka lag."""

    name: str
    namespace: str
    target: str
    min_replicas: int
    max_replicas: int
    triggers: tuple[KafkaTrigger, ...]


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

    def scaled_object_for(self, app_id: str) -> ScaledObjectInfo | None:
        return next((so for so in self.scaled_objects if so.target == app_id), None)


# KEDA 2.x kafka scaler defaults (pkg/scalers/kafka_scaler.go): lagThreshold 10, activationLagThreshold 0.
KEDA_DEFAULT_LAG_THRESHOLD = 10
KEDA_DEFAULT_ACTIVATION_LAG_THRESHOLD = 0


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
            allow_idle_consumers=str(md.get("allowIdleConsumers", "false")).lower() == "true",
            limit_to_partitions_with_lag=str(md.get("limitToPartitionsWithLag", "false")).lower() == "true",
        ))
    return ScaledObjectInfo(
        name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")),
        target=str((spec.get("scaleTargetRef") or {}).get("name", "")),
        min_replicas=int(spec.get("minReplicaCount", 0)), max_replicas=int(spec.get("maxReplicaCount", 100)),
        triggers=tuple(triggers))
