"""The platform's own resources, judged from the status their operators write.

Strimzi (Kafka, KafkaNodePool, KafkaTopic), KEDA (ScaledObject), cert-manager (Certificate) and the
HorizontalPodAutoscaler controller each report health in `status` in their own way; Dapr's CRDs have no
status at all (the Dapr operator never writes one), so for Dapr the console can only show what is
declared and check what it points at (a Subscription whose pub/sub Component does not exist delivers
nothing). Every resource comes out as a `PlatformResource` with the same header (ready, one-word
state, message, problem) and a typed subclass with the facts of its kind, so a table can list them all
and a screen can read, say, a Certificate's days left without parsing strings.

Missing status is itself a finding: an operator that never wrote status is not running.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from console.model.conditions import Condition, conditions_of, find, parse_time

CERT_EXPIRY_WARNING_DAYS = 14.0
KEDA_PAUSED_ANNOTATION = "autoscaling.keda.sh/paused"
KEDA_PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"

# `--kind` names (and their kubectl-style short names) -> the object kind.
KIND_NAMES: dict[str, str] = {
    "kafka": "Kafka", "kafkanodepool": "KafkaNodePool", "knp": "KafkaNodePool", "kafkatopic": "KafkaTopic",
    "kt": "KafkaTopic", "component": "Component", "subscription": "Subscription", "resiliency": "Resiliency",
    "configuration": "Configuration", "scaledobject": "ScaledObject", "so": "ScaledObject",
    "certificate": "Certificate", "cert": "Certificate", "hpa": "HorizontalPodAutoscaler",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler",
}
PLATFORM_KINDS: tuple[str, ...] = ("Kafka", "KafkaNodePool", "KafkaTopic", "Component", "Subscription",
                                   "Resiliency", "Configuration", "ScaledObject", "Certificate",
                                   "HorizontalPodAutoscaler")


@dataclass(frozen=True)
class PlatformResource:
    kind: str
    namespace: str
    name: str
    ready: bool | None  # None: the kind has no readiness (Dapr objects)
    state: str          # one word: Ready, NotReady, Unknown, Active, Idle, Paused, Expiring, Defined...
    message: str | None
    problem: bool
    conditions: tuple[Condition, ...]

    def facts(self) -> tuple[tuple[str, str], ...]:
        """Kind-specific facts, in display order, for a table's detail column and `describe`."""
        return ()


@dataclass(frozen=True)
class MetricValue:
    """One autoscaling metric: what it is now against its target, as kubectl's TARGETS column shows it."""

    name: str
    current: str | None
    target: str | None

    def __str__(self) -> str:
        return f"{self.name} {self.current or '<unknown>'}/{self.target or '?'}"


@dataclass(frozen=True)
class KafkaStatus(PlatformResource):
    kafka_version: str | None
    metadata_version: str | None
    cluster_id: str | None
    bootstrap: tuple[str, ...]
    node_pools: tuple[str, ...]

    def facts(self) -> tuple[tuple[str, str], ...]:
        facts = (("version", self.kafka_version or ""), ("bootstrap", ",".join(self.bootstrap)),
                 ("pools", ",".join(self.node_pools)))
        return tuple((k, v) for k, v in facts if v)


@dataclass(frozen=True)
class NodePoolStatus(PlatformResource):
    cluster: str | None
    desired_replicas: int
    replicas: int | None
    roles: tuple[str, ...]
    node_ids: tuple[int, ...]

    def facts(self) -> tuple[tuple[str, str], ...]:
        return (("replicas", f"{_dash(self.replicas)}/{self.desired_replicas}"), ("roles", ",".join(self.roles)),
                ("nodes", ",".join(str(n) for n in self.node_ids) or "-"))


@dataclass(frozen=True)
class TopicStatus(PlatformResource):
    cluster: str | None
    topic_name: str
    partitions: int | None
    replicas: int | None

    def facts(self) -> tuple[tuple[str, str], ...]:
        return (("topic", self.topic_name), ("partitions", _dash(self.partitions)),
                ("replicas", _dash(self.replicas)))


@dataclass(frozen=True)
class ComponentStatus(PlatformResource):
    type: str
    version: str
    scopes: tuple[str, ...]

    def facts(self) -> tuple[tuple[str, str], ...]:
        return (("type", f"{self.type}/{self.version}"), ("scopes", ",".join(self.scopes) or "(all apps)"))


@dataclass(frozen=True)
class SubscriptionStatus(PlatformResource):
    pubsub: str
    topic: str
    route: str | None
    dead_letter_topic: str | None
    scopes: tuple[str, ...]
    bulk: bool

    def facts(self) -> tuple[tuple[str, str], ...]:
        return (("topic", self.topic), ("route", self.route or "-"), ("dlq", self.dead_letter_topic or "-"),
                ("apps", ",".join(self.scopes) or "(all apps)"))


@dataclass(frozen=True)
class ResiliencyStatus(PlatformResource):
    policies: tuple[str, ...]
    targets: tuple[str, ...]

    def facts(self) -> tuple[tuple[str, str], ...]:
        groups: dict[str, int] = {}
        for policy in self.policies:
            group = policy.split("/", 1)[0]
            groups[group] = groups.get(group, 0) + 1
        return (("policies", ",".join(f"{n} {g}" for g, n in groups.items()) or "-"),
                ("targets", ",".join(self.targets) or "-"))


@dataclass(frozen=True)
class ConfigurationStatus(PlatformResource):
    tracing_sampling_rate: str | None
    metrics_enabled: bool | None
    features: tuple[str, ...]

    def facts(self) -> tuple[tuple[str, str], ...]:
        metrics = "-" if self.metrics_enabled is None else ("on" if self.metrics_enabled else "off")
        return (("tracing", self.tracing_sampling_rate or "off"), ("metrics", metrics),
                ("features", ",".join(self.features) or "-"))


@dataclass(frozen=True)
class AutoscalerStatus(PlatformResource):
    """What an autoscaler (an HPA, or KEDA through the HPA it drives) is doing to its target."""

    target: str
    min_replicas: int
    max_replicas: int
    current_replicas: int | None
    desired_replicas: int | None
    metrics: tuple[MetricValue, ...]

    def facts(self) -> tuple[tuple[str, str], ...]:
        return (("target", self.target), ("replicas", f"{_dash(self.current_replicas)}->"
                                          f"{_dash(self.desired_replicas)} ({self.min_replicas}-{self.max_replicas})"),
                ("metrics", "; ".join(str(m) for m in self.metrics) or "-"))


@dataclass(frozen=True)
class ScaledObjectStatus(AutoscalerStatus):
    active: bool | None
    paused: bool
    fallback: bool
    triggers: tuple[str, ...]
    hpa: str | None


@dataclass(frozen=True)
class CertificateStatus(PlatformResource):
    dns_names: tuple[str, ...]
    issuer: str
    secret: str
    not_before: float | None
    not_after: float | None
    renewal_time: float | None
    days_left: float | None

    def facts(self) -> tuple[tuple[str, str], ...]:
        days = "-" if self.days_left is None else f"{self.days_left:.1f}"
        return (("dns", ",".join(self.dns_names)), ("issuer", self.issuer), ("days left", days))


@dataclass(frozen=True)
class HpaStatus(AutoscalerStatus):
    pass


@dataclass(frozen=True)
class PlatformReport:
    """What a source could read: the resources, and (kind, one-line error) for each kind it could not."""

    resources: tuple[PlatformResource, ...]
    unreadable: tuple[tuple[str, str], ...] = ()

    @property
    def problem(self) -> bool:
        return any(r.problem for r in self.resources)


def read_platform(objects: Iterable[Mapping[str, Any]], now: float,
                  complete: frozenset[str] | None = None) -> list[PlatformResource]:
    """Every platform resource among `objects` (other kinds are ignored), in PLATFORM_KINDS order.

    One call sees all kinds at once because some judgements cross kinds: a Subscription needs its
    Component, a ScaledObject's current metric lives in the HPA that KEDA created for it. `complete`
    names the kinds whose every object is in `objects` (default: all); a Subscription is only called
    broken for a missing Component when the Components could be read.
    """
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(str(obj.get("kind")), []).append(obj)
    components: set[tuple[str, str]] | None = {(_ns(o), _name(o)) for o in by_kind.get("Component", [])}
    if complete is not None and "Component" not in complete:
        components = None
    hpas = {(_ns(o), _name(o)): o for o in by_kind.get("HorizontalPodAutoscaler", [])}
    readers = {
        "Kafka": kafka, "KafkaNodePool": kafka_node_pool, "KafkaTopic": kafka_topic, "Component": dapr_component,
        "Subscription": lambda o: dapr_subscription(o, components), "Resiliency": dapr_resiliency,
        "Configuration": dapr_configuration, "ScaledObject": lambda o: scaled_object(o, hpas),
        "Certificate": lambda o: certificate(o, now),
        "HorizontalPodAutoscaler": horizontal_pod_autoscaler,
    }
    found: list[PlatformResource] = []
    for kind in PLATFORM_KINDS:
        objs = sorted(by_kind.get(kind, []), key=lambda o: (_ns(o), _name(o)))
        if kind == "HorizontalPodAutoscaler":
            objs = [o for o in objs if not _owned_by(o, "ScaledObject")]  # shown in their ScaledObject's row
        found.extend(readers[kind](o) for o in objs)
    return found


# --- Strimzi -------------------------------------------------------------------------------------------


def _strimzi_header(obj: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Strimzi's readiness: a Ready condition (NotReady while reconciling, Warning for advice)."""
    conditions = conditions_of(obj)
    base = {"kind": str(obj.get("kind")), "namespace": _ns(obj), "name": _name(obj), "conditions": conditions}
    if not obj.get("status"):
        return {**base, "ready": False, "state": "Unknown", "problem": True,
                "message": f"no status yet: is the Strimzi {what} running?"}
    ready, not_ready = find(conditions, "Ready"), find(conditions, "NotReady")
    warnings = "; ".join(_why(c) for c in conditions if c.type == "Warning" and c.true) or None
    generation = int(_meta(obj).get("generation") or 0)
    observed = int((obj.get("status") or {}).get("observedGeneration") or 0)
    if ready is not None and ready.true:
        if observed < generation:
            return {**base, "ready": True, "state": "Reconciling", "problem": False,
                    "message": f"generation {generation} not yet reconciled (observed {observed})"}
        return {**base, "ready": True, "state": "Ready", "problem": False, "message": warnings}
    for bad in (not_ready if not_ready is not None and not_ready.true else None,
                ready if ready is not None and ready.false else None):
        if bad is not None:
            return {**base, "ready": False, "state": "NotReady", "problem": True, "message": _why(bad)}
    return {**base, "ready": False, "state": "Unknown", "problem": True, "message": warnings or "no Ready condition"}


def kafka(obj: Mapping[str, Any]) -> KafkaStatus:
    status = obj.get("status") or {}
    bootstrap = tuple(str(listener.get("bootstrapServers")) for listener in status.get("listeners") or []
                      if listener.get("bootstrapServers"))
    return KafkaStatus(
        **_strimzi_header(obj, "cluster operator"), kafka_version=status.get("kafkaVersion"),
        metadata_version=status.get("kafkaMetadataVersion"), cluster_id=status.get("clusterId"),
        bootstrap=bootstrap, node_pools=tuple(str(p.get("name")) for p in status.get("kafkaNodePools") or []))


def kafka_node_pool(obj: Mapping[str, Any]) -> NodePoolStatus:
    """A node pool has no Ready condition: it is ready when the operator reports every replica it asked for."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas") or 0)
    header = _strimzi_header(obj, "cluster operator")
    if status:
        replicas = status.get("replicas")
        warnings = [c for c in header["conditions"] if c.type == "Warning" and c.true]
        if replicas == desired:
            header.update(ready=True, state="Ready", problem=False,
                          message="; ".join(_why(c) for c in warnings) or None)
        else:
            header.update(ready=False, state="Scaling", problem=False,
                          message=f"{_dash(replicas)} of {desired} replicas")
    return NodePoolStatus(
        **header, cluster=_labels(obj).get(STRIMZI_CLUSTER_LABEL), desired_replicas=desired,
        replicas=status.get("replicas"), roles=tuple(str(r) for r in spec.get("roles") or []),
        node_ids=tuple(int(n) for n in status.get("nodeIds") or []))


def kafka_topic(obj: Mapping[str, Any]) -> TopicStatus:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return TopicStatus(
        **_strimzi_header(obj, "topic operator"), cluster=_labels(obj).get(STRIMZI_CLUSTER_LABEL),
        topic_name=str(status.get("topicName") or spec.get("topicName") or _name(obj)),
        partitions=spec.get("partitions"), replicas=spec.get("replicas"))


# --- Dapr (no status: declared facts and what they point at) ------------------------------------------


def _dapr_header(obj: Mapping[str, Any], message: str | None = None) -> dict[str, Any]:
    return {"kind": str(obj.get("kind")), "namespace": _ns(obj), "name": _name(obj), "ready": None,
            "state": "Broken" if message else "Defined", "message": message, "problem": message is not None,
            "conditions": ()}


def dapr_component(obj: Mapping[str, Any]) -> ComponentStatus:
    spec = obj.get("spec") or {}
    return ComponentStatus(**_dapr_header(obj), type=str(spec.get("type", "")), version=str(spec.get("version", "")),
                           scopes=tuple(str(s) for s in obj.get("scopes") or []))


def dapr_subscription(obj: Mapping[str, Any], components: set[tuple[str, str]] | None) -> SubscriptionStatus:
    """`components`: (namespace, name) of every Component, or None when they could not be read."""
    spec = obj.get("spec") or {}
    pubsub = str(spec.get("pubsubname", ""))
    routes = spec.get("routes") or {}
    missing = None if components is None or (_ns(obj), pubsub) in components else (
        f"pub/sub component {pubsub!r} not found in {_ns(obj)}: nothing is delivered")
    return SubscriptionStatus(
        **_dapr_header(obj, missing), pubsub=pubsub, topic=str(spec.get("topic", "")),
        route=(routes.get("default") if isinstance(routes, Mapping) else None) or spec.get("route"),
        dead_letter_topic=spec.get("deadLetterTopic") or None, scopes=tuple(str(s) for s in obj.get("scopes") or []),
        bulk=bool((spec.get("bulkSubscribe") or {}).get("enabled")))


def dapr_resiliency(obj: Mapping[str, Any]) -> ResiliencyStatus:
    spec = obj.get("spec") or {}
    policies = spec.get("policies") or {}
    names = [f"{group}/{name}" for group in ("timeouts", "retries", "circuitBreakers")
             for name in (policies.get(group) or {})]
    targets = spec.get("targets") or {}
    target_names = [f"{group}/{name}" for group in ("apps", "actors", "components") for name in (targets.get(group) or {})]
    return ResiliencyStatus(**_dapr_header(obj), policies=tuple(names), targets=tuple(target_names))


def dapr_configuration(obj: Mapping[str, Any]) -> ConfigurationStatus:
    spec = obj.get("spec") or {}
    tracing = spec.get("tracing") or {}
    metric = spec.get("metric") or spec.get("metrics") or {}
    return ConfigurationStatus(
        **_dapr_header(obj), tracing_sampling_rate=tracing.get("samplingRate"),
        metrics_enabled=metric.get("enabled") if "enabled" in metric else None,
        features=tuple(str(f.get("name")) for f in spec.get("features") or [] if f.get("enabled")))


# --- KEDA ----------------------------------------------------------------------------------------------


def scaled_object(obj: Mapping[str, Any], hpas: Mapping[tuple[str, str], Mapping[str, Any]]) -> ScaledObjectStatus:
    """KEDA's conditions (Ready, Active, Fallback, Paused) plus the HPA it drives, which holds the live metric."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = conditions_of(obj)
    annotations = _meta(obj).get("annotations") or {}
    ready, active = find(conditions, "Ready"), find(conditions, "Active")
    fallback, paused_c = find(conditions, "Fallback"), find(conditions, "Paused")
    paused = bool((paused_c is not None and paused_c.true) or annotations.get(KEDA_PAUSED_ANNOTATION) == "true"
                  or KEDA_PAUSED_REPLICAS_ANNOTATION in annotations)
    failing = [name for name, h in (status.get("health") or {}).items() if (h or {}).get("status") == "Failing"]
    hpa_name = status.get("hpaName") or f"keda-hpa-{_name(obj)}"
    hpa = hpas.get((_ns(obj), hpa_name))
    state, message, problem = "Ready", None, False
    if not status:
        state, message, problem = "Unknown", "no status yet: is KEDA running?", True
    elif ready is None or not ready.true:
        state, message, problem = "NotReady", _why(ready) if ready else "no Ready condition", True
    elif fallback is not None and fallback.true:
        state, message, problem = "Fallback", _why(fallback), True
    elif failing:
        state, message, problem = "Failing", "scaler failing: " + ", ".join(sorted(failing)), True
    elif paused:
        state, message = "Paused", _why(paused_c) if paused_c and paused_c.true else "paused by annotation"
    elif active is not None:
        state = "Active" if active.true else "Idle"
    hpa_status = (hpa or {}).get("status") or {}
    return ScaledObjectStatus(
        kind="ScaledObject", namespace=_ns(obj), name=_name(obj), ready=bool(ready and ready.true), state=state,
        message=message, problem=problem, conditions=conditions,
        target=str((spec.get("scaleTargetRef") or {}).get("name", "")),
        min_replicas=int(spec.get("minReplicaCount", 0)), max_replicas=int(spec.get("maxReplicaCount", 100)),
        active=active.true if active is not None else None, paused=paused, fallback=bool(fallback and fallback.true),
        triggers=tuple(str(t.get("type")) for t in spec.get("triggers") or []), hpa=hpa_name if hpa else None,
        current_replicas=hpa_status.get("currentReplicas"), desired_replicas=hpa_status.get("desiredReplicas"),
        metrics=hpa_metrics(hpa) if hpa else ())


# --- cert-manager --------------------------------------------------------------------------------------


def certificate(obj: Mapping[str, Any], now: float) -> CertificateStatus:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = conditions_of(obj)
    ready = find(conditions, "Ready")
    not_after = parse_time(status.get("notAfter"))
    days_left = None if not_after is None else round((not_after - now) / 86400, 2)
    issuing = find(conditions, "Issuing")
    state, message, problem = "Ready", None, False
    if not status:
        state, message, problem = "Unknown", "no status yet: is cert-manager running?", True
    elif days_left is not None and days_left <= 0:
        state, message, problem = "Expired", f"expired {-days_left:.1f} days ago", True
    elif ready is None or not ready.true:
        state, message, problem = "NotReady", _why(ready) if ready else "no Ready condition", True
    elif days_left is not None and days_left < CERT_EXPIRY_WARNING_DAYS:
        renewal = f"; renewal: {_why(issuing)}" if issuing is not None else ""
        state, message, problem = "Expiring", f"expires in {days_left:.1f} days{renewal}", True
    elif issuing is not None and issuing.true:
        state, message = "Issuing", _why(issuing)
    issuer = spec.get("issuerRef") or {}
    return CertificateStatus(
        kind="Certificate", namespace=_ns(obj), name=_name(obj), ready=bool(ready and ready.true), state=state,
        message=message, problem=problem, conditions=conditions,
        dns_names=tuple(str(d) for d in spec.get("dnsNames") or []),
        issuer=f"{issuer.get('kind', 'Issuer')}/{issuer.get('name', '')}", secret=str(spec.get("secretName", "")),
        not_before=parse_time(status.get("notBefore")), not_after=not_after,
        renewal_time=parse_time(status.get("renewalTime")), days_left=days_left)


# --- HorizontalPodAutoscaler (autoscaling/v2) -----------------------------------------------------------


def horizontal_pod_autoscaler(obj: Mapping[str, Any]) -> HpaStatus:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = conditions_of(obj)
    able, active, limited = (find(conditions, t) for t in ("AbleToScale", "ScalingActive", "ScalingLimited"))
    current, desired = status.get("currentReplicas"), status.get("desiredReplicas")
    state, message, problem = "Stable", None, False
    if not status:
        state, message, problem = "Unknown", "no status yet: is the controller manager running?", True
    elif active is not None and active.false:
        state, message, problem = "NotScaling", _why(active), True
    elif able is not None and able.false:
        state, message, problem = "NotScaling", _why(able), True
    elif limited is not None and limited.true:
        state, message = "Limited", _why(limited)
    elif current is not None and desired is not None and current != desired:
        state = "Scaling"
    return HpaStatus(
        kind="HorizontalPodAutoscaler", namespace=_ns(obj), name=_name(obj), ready=not problem, state=state,
        message=message, problem=problem, conditions=conditions,
        target=f"{(spec.get('scaleTargetRef') or {}).get('kind', '')}/{(spec.get('scaleTargetRef') or {}).get('name', '')}",
        min_replicas=int(spec.get("minReplicas") or 1), max_replicas=int(spec.get("maxReplicas") or 0),
        current_replicas=current, desired_replicas=desired, metrics=hpa_metrics(obj))


def hpa_metrics(hpa: Mapping[str, Any]) -> tuple[MetricValue, ...]:
    """Each spec metric with its current value from status, in spec order (kubectl's TARGETS column)."""
    currents = ((hpa.get("status") or {}).get("currentMetrics")) or []
    values = []
    for index, metric in enumerate((hpa.get("spec") or {}).get("metrics") or []):
        kind = str(metric.get("type", ""))
        key = kind[0].lower() + kind[1:] if kind else ""
        body = metric.get(key) or {}
        name = str(body.get("name") or (body.get("metric") or {}).get("name") or kind)
        current_body = next((c.get(key) or {} for c in currents if c.get("type") == kind
                             and _metric_name(c.get(key) or {}) == name), None)
        if current_body is None and index < len(currents) and currents[index].get("type") == kind:
            current_body = currents[index].get(key) or {}
        values.append(MetricValue(name=name, current=_quantity((current_body or {}).get("current") or {}),
                                  target=_quantity(body.get("target") or {}, target=True)))
    return tuple(values)


def _metric_name(body: Mapping[str, Any]) -> str:
    return str(body.get("name") or (body.get("metric") or {}).get("name") or "")


def _quantity(value: Mapping[str, Any], *, target: bool = False) -> str | None:
    if value.get("averageUtilization") is not None:
        return f"{value['averageUtilization']}%"
    if value.get("averageValue") is not None:
        return f"{value['averageValue']} (avg)" if target else str(value["averageValue"])
    if value.get("value") is not None:
        return str(value["value"])
    return None


# --- helpers -------------------------------------------------------------------------------------------


def _why(c: Condition | None) -> str:
    if c is None:
        return ""
    return ": ".join(p for p in (c.reason, c.message) if p) or f"{c.type}={c.status}"


def _owned_by(obj: Mapping[str, Any], kind: str) -> bool:
    return any(r.get("kind") == kind for r in _meta(obj).get("ownerReferences") or [])


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return _meta(obj).get("labels") or {}


def _ns(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("namespace") or "")


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")
