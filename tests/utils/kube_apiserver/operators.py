"""Status as the platform's operators write it: Strimzi, KEDA, cert-manager and the HPA controller.

The shapes follow each operator's own types (and validate against the official CRD schemas in
`shared/schemas/crds`): Strimzi's Ready condition, listeners and node pool ids; KEDA's Ready / Active /
Fallback / Paused conditions, health map and the `keda-hpa-<name>` HorizontalPodAutoscaler it creates to
carry the external metric; cert-manager's Ready condition with notBefore / notAfter / renewalTime; the
HPA controller's AbleToScale / ScalingActive / ScalingLimited. Dapr's CRDs have no status: the Dapr
operator writes none, so neither does the stand-in.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests.utils.kube_apiserver.store import Clock

DAY = 86400.0
STRIMZI_VERSION = "0.47.0"


def _id(seed: str) -> str:
    """A stable 22-character id like Kafka's cluster and topic ids."""
    return hashlib.sha256(seed.encode()).hexdigest()[:22]


def _condition(clock: Clock, type_: str, status: str, reason: str | None = None, message: str | None = None,
               *, ago: float = 3600.0) -> dict[str, Any]:
    cond = {"type": type_, "status": status, "lastTransitionTime": clock.stamp(clock.now() - ago)}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def operator_status(obj: dict[str, Any], clock: Clock) -> dict[str, Any] | None:
    """The status an operator would have written by now for `obj`, or None for kinds without one."""
    writer = _WRITERS.get(str(obj.get("kind")))
    return writer(obj, clock) if writer else None


def _kafka(obj: dict[str, Any], clock: Clock) -> dict[str, Any]:
    name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]
    spec = obj.get("spec") or {}
    listeners = []
    for listener in (spec.get("kafka") or {}).get("listeners") or []:
        host = f"{name}-kafka-bootstrap.{ns}.svc"
        listeners.append({"name": listener["name"], "addresses": [{"host": host, "port": listener["port"]}],
                          "bootstrapServers": f"{host}:{listener['port']}"})
    return {
        "conditions": [_condition(clock, "Ready", "True")], "observedGeneration": 1, "listeners": listeners,
        "kafkaNodePools": [{"name": "dual-role"}], "clusterId": _id(f"{ns}/{name}"),
        "operatorLastSuccessfulVersion": STRIMZI_VERSION,
        "kafkaVersion": (spec.get("kafka") or {}).get("version"),
        "kafkaMetadataVersion": (spec.get("kafka") or {}).get("metadataVersion"),
    }


def _node_pool(obj: dict[str, Any], clock: Clock) -> dict[str, Any]:
    spec, meta = obj.get("spec") or {}, obj["metadata"]
    cluster = meta.get("labels", {}).get("strimzi.io/cluster", "")
    replicas = int(spec.get("replicas") or 0)
    return {
        "conditions": [], "observedGeneration": 1, "nodeIds": list(range(replicas)),
        "clusterId": _id(f"{meta['namespace']}/{cluster}"), "roles": list(spec.get("roles") or []),
        "replicas": replicas,
        "labelSelector": f"strimzi.io/cluster={cluster},strimzi.io/name={cluster}-kafka,strimzi.io/kind=Kafka,"
                         f"strimzi.io/pool-name={meta['name']}",
    }


def _topic(obj: dict[str, Any], clock: Clock) -> dict[str, Any]:
    meta = obj["metadata"]
    topic = (obj.get("spec") or {}).get("topicName") or meta["name"]
    return {"conditions": [_condition(clock, "Ready", "True")], "observedGeneration": 1, "topicName": topic,
            "topicId": _id(f"topic/{topic}")}


def _certificate(obj: dict[str, Any], clock: Clock) -> dict[str, Any]:
    now = clock.now()
    return {
        "conditions": [{**_condition(clock, "Ready", "True", "Ready", "Certificate is up to date and has not expired",
                                     ago=30 * DAY), "observedGeneration": 1}],
        "notBefore": clock.stamp(now - 30 * DAY), "notAfter": clock.stamp(now + 60 * DAY),
        "renewalTime": clock.stamp(now + 30 * DAY), "revision": 1,
    }


def _cluster_issuer(obj: dict[str, Any], clock: Clock) -> dict[str, Any]:
    return {"conditions": [{**_condition(clock, "Ready", "True", "ACMEAccountRegistered",
                                         "The ACME account was registered with the ACME server"),
                            "observedGeneration": 1}],
            "acme": {"uri": "https://acme-v02.api.letsencrypt.org/acme/acct/123456789",
                     "lastRegisteredEmail": "ops@example.com"}}


def _scaled_object(obj: dict[str, Any], clock: Clock) -> dict[str, Any]:
    name = obj["metadata"]["name"]
    metrics = [metric_name(i, t) for i, t in enumerate((obj.get("spec") or {}).get("triggers") or [])]
    return {
        "scaleTargetKind": "apps/v1.Deployment",
        "scaleTargetGVKR": {"group": "apps", "kind": "Deployment", "resource": "deployments", "version": "v1"},
        "originalReplicaCount": 1, "lastActiveTime": clock.stamp(clock.now() - 600), "externalMetricNames": metrics,
        "health": {m: {"numberOfFailures": 0, "status": "Happy"} for m in metrics},
        "hpaName": f"keda-hpa-{name}", "triggersTypes": ",".join(str(t.get("type")) for t in
                                                                 (obj.get("spec") or {}).get("triggers") or []),
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "ScaledObjectReady",
             "message": "ScaledObject is defined correctly and is ready for scaling"},
            {"type": "Active", "status": "False", "reason": "ScalerNotActive",
             "message": "Scaling is not performed because triggers are not active"},
            {"type": "Fallback", "status": "False", "reason": "NoFallbackFound",
             "message": "No fallbacks are active on this scaled object"},
            {"type": "Paused", "status": "False"},
        ],
    }


def metric_name(index: int, trigger: dict[str, Any]) -> str:
    """KEDA's external metric name for a trigger: s<index>-<scaler>-<topic>."""
    topic = (trigger.get("metadata") or {}).get("topic") or "topics"
    return f"s{index}-{trigger.get('type')}-{topic}"


def keda_hpa(scaled_object: dict[str, Any], clock: Clock, current: str = "0") -> dict[str, Any]:
    """The HorizontalPodAutoscaler KEDA creates and owns for a ScaledObject."""
    meta, spec = scaled_object["metadata"], scaled_object.get("spec") or {}
    metrics: list[dict[str, Any]] = []
    currents: list[dict[str, Any]] = []
    for index, trigger in enumerate(spec.get("triggers") or []):
        metric = {"name": metric_name(index, trigger),
                  "selector": {"matchLabels": {"scaledobject.keda.sh/name": meta["name"]}}}
        threshold = str((trigger.get("metadata") or {}).get("lagThreshold", "10"))
        metrics.append({"type": "External", "external": {
            "metric": metric, "target": {"type": "AverageValue", "averageValue": threshold}}})
        currents.append({"type": "External", "external": {"metric": metric, "current": {"averageValue": current}}})
    low = int(spec.get("minReplicaCount", 0)) or 1
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"keda-hpa-{meta['name']}", "namespace": meta["namespace"],
                     "labels": {"app.kubernetes.io/managed-by": "keda-operator", "app.kubernetes.io/name":
                                f"keda-hpa-{meta['name']}", "scaledobject.keda.sh/name": meta["name"]},
                     "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                                          "name": meta["name"], "uid": meta.get("uid", ""), "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": (spec.get("scaleTargetRef") or {}).get("name", "")},
                 "minReplicas": low, "maxReplicas": int(spec.get("maxReplicaCount", 100)), "metrics": metrics},
        "status": {"currentReplicas": low, "desiredReplicas": low, "currentMetrics": currents,
                   "conditions": _hpa_conditions(clock, "the HPA was able to successfully calculate a replica "
                                                        f"count from external metric {metrics[0]['external']['metric']['name']}"
                                                        if metrics else "")},
    }


def _hpa(obj: dict[str, Any], clock: Clock) -> dict[str, Any]:
    low = int((obj.get("spec") or {}).get("minReplicas") or 1)
    currents = []
    for metric in (obj.get("spec") or {}).get("metrics") or []:
        if metric.get("type") == "Resource":
            currents.append({"type": "Resource", "resource": {
                "name": metric["resource"]["name"], "current": {"averageUtilization": 12, "averageValue": "12m"}}})
    return {"currentReplicas": low, "desiredReplicas": low, "currentMetrics": currents,
            "conditions": _hpa_conditions(clock, "the HPA was able to successfully calculate a replica count from "
                                                 "cpu resource utilization (percentage of request)")}


def _hpa_conditions(clock: Clock, active_message: str) -> list[dict[str, Any]]:
    return [
        _condition(clock, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
        _condition(clock, "ScalingActive", "True", "ValidMetricFound", active_message),
        _condition(clock, "ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the "
                   "acceptable range"),
    ]


def _namespace(obj: dict[str, Any], clock: Clock) -> dict[str, Any]:
    return {"phase": "Active"}


_WRITERS = {
    "Kafka": _kafka, "KafkaNodePool": _node_pool, "KafkaTopic": _topic, "Certificate": _certificate,
    "ClusterIssuer": _cluster_issuer, "ScaledObject": _scaled_object, "HorizontalPodAutoscaler": _hpa,
    "Namespace": _namespace,
}
