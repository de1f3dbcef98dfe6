"""Platform resources judged from crafted operator status: Strimzi, Dapr, KEDA, cert-manager, HPA."""

from __future__ import annotations

from typing import Any

import pytest

from console.model.conditions import parse_time
from console.model.platform import (
    CertificateStatus,
    HpaStatus,
    ScaledObjectStatus,
    SubscriptionStatus,
    TopicStatus,
    read_platform,
)

NOW = parse_time("2025-06-01T00:00:00Z") or 0.0
DAY = 86400


def obj(kind: str, name: str, namespace: str = "todo-app", *, status: dict[str, Any] | None = None,
        spec: dict[str, Any] | None = None, generation: int = 1, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "namespace": namespace, "generation": generation},
                            "spec": spec or {}, **extra}
    if status is not None:
        body["status"] = status
    return body


def ready(status: str = "True", reason: str | None = None, message: str | None = None) -> list[dict[str, Any]]:
    return [{"type": "Ready", "status": status, "reason": reason, "message": message}]


def one(objects: list[dict[str, Any]], kind: str) -> Any:
    (found,) = [r for r in read_platform(objects, NOW) if r.kind == kind]
    return found


def test_strimzi_topic_readiness_comes_from_the_ready_condition() -> None:
    good = one([obj("KafkaTopic", "task-events", "kafka", spec={"partitions": 3, "replicas": 1},
                    status={"conditions": ready(), "observedGeneration": 1, "topicName": "task-events"})], "KafkaTopic")
    assert isinstance(good, TopicStatus)
    assert (good.ready, good.state, good.problem, good.partitions) == (True, "Ready", False, 3)
    bad = one([obj("KafkaTopic", "t", "kafka", status={"conditions": ready(
        "False", "KafkaError", "org.apache.kafka.common.errors.PolicyViolationException: replicas > brokers")})],
        "KafkaTopic")
    assert (bad.ready, bad.state, bad.problem) == (False, "NotReady", True)
    assert bad.message == "KafkaError: org.apache.kafka.common.errors.PolicyViolationException: replicas > brokers"


def test_strimzi_reconciling_warnings_and_missing_status() -> None:
    stale = one([obj("Kafka", "todo-kafka", "kafka", generation=3,
                     status={"conditions": ready(), "observedGeneration": 2})], "Kafka")
    assert (stale.ready, stale.state, stale.problem) == (True, "Reconciling", False)
    warned = one([obj("Kafka", "todo-kafka", "kafka", status={"observedGeneration": 1, "conditions": [
        *ready(), {"type": "Warning", "status": "True", "reason": "KafkaStorage", "message": "ephemeral storage"}],
        "listeners": [{"name": "plain", "bootstrapServers": "b:9092"}], "kafkaNodePools": [{"name": "dual-role"}]})],
        "Kafka")
    assert (warned.state, warned.problem, warned.message) == ("Ready", False, "KafkaStorage: ephemeral storage")
    assert dict(warned.facts())["bootstrap"] == "b:9092"
    no_operator = one([obj("Kafka", "todo-kafka", "kafka")], "Kafka")
    assert (no_operator.state, no_operator.problem) == ("Unknown", True)
    assert "is the Strimzi cluster operator running" in no_operator.message
    not_ready = one([obj("Kafka", "k", "kafka", status={"conditions": [
        {"type": "NotReady", "status": "True", "reason": "Creating", "message": "Kafka cluster is being deployed"}]})],
        "Kafka")
    assert (not_ready.state, not_ready.message) == ("NotReady", "Creating: Kafka cluster is being deployed")


def test_node_pool_is_ready_when_every_replica_is_reported() -> None:
    pool = {"replicas": 3, "roles": ["broker"]}
    scaling = one([obj("KafkaNodePool", "brokers", "kafka", spec=pool, status={"replicas": 2, "nodeIds": [0, 1]})],
                  "KafkaNodePool")
    assert (scaling.ready, scaling.state, scaling.problem) == (False, "Scaling", False)
    done = one([obj("KafkaNodePool", "brokers", "kafka", spec=pool, status={"replicas": 3, "nodeIds": [0, 1, 2]})],
               "KafkaNodePool")
    assert (done.ready, dict(done.facts())["nodes"]) == (True, "0,1,2")


def test_dapr_has_no_status_but_a_subscription_without_its_component_is_broken() -> None:
    sub = obj("Subscription", "worker-task-events", spec={"pubsubname": "kafka-pubsub", "topic": "task-events",
                                                          "routes": {"default": "/events"}, "deadLetterTopic": "dlq"},
              scopes=["worker"])
    component = obj("Component", "kafka-pubsub", spec={"type": "pubsub.kafka", "version": "v1"}, scopes=["worker"])
    fine = one([sub, component], "Subscription")
    assert isinstance(fine, SubscriptionStatus)
    assert (fine.ready, fine.state, fine.problem, fine.route, fine.dead_letter_topic) == (
        None, "Defined", False, "/events", "dlq")
    broken = one([sub], "Subscription")
    assert (broken.state, broken.problem) == ("Broken", True)
    assert broken.message == "pub/sub component 'kafka-pubsub' not found in todo-app: nothing is delivered"
    unknown = [r for r in read_platform([sub], NOW, complete=frozenset({"Subscription"})) if r.kind == "Subscription"]
    assert not unknown[0].problem  # the Components could not be read: no verdict on them


def test_scaled_object_conditions_and_the_metric_of_its_hpa() -> None:
    so = obj("ScaledObject", "worker", spec={"scaleTargetRef": {"name": "worker"}, "minReplicaCount": 1,
                                             "maxReplicaCount": 3, "triggers": [{"type": "kafka"}]},
             status={"hpaName": "keda-hpa-worker", "conditions": [
                 {"type": "Ready", "status": "True"}, {"type": "Active", "status": "True", "reason": "ScalerActive"},
                 {"type": "Fallback", "status": "False"}, {"type": "Paused", "status": "False"}],
                 "health": {"s0-kafka-task-events": {"numberOfFailures": 0, "status": "Happy"}}})
    hpa = obj("HorizontalPodAutoscaler", "keda-hpa-worker",
              spec={"minReplicas": 1, "maxReplicas": 3, "metrics": [{"type": "External", "external": {
                  "metric": {"name": "s0-kafka-task-events"}, "target": {"type": "AverageValue", "averageValue": "50"}}}]},
              status={"currentReplicas": 1, "desiredReplicas": 3, "currentMetrics": [{"type": "External", "external": {
                  "metric": {"name": "s0-kafka-task-events"}, "current": {"averageValue": "240"}}}]})
    hpa["metadata"]["ownerReferences"] = [{"kind": "ScaledObject", "name": "worker"}]
    resources = read_platform([so, hpa], NOW)
    assert [r.kind for r in resources] == ["ScaledObject"]  # KEDA's HPA shows in its ScaledObject's row
    found = resources[0]
    assert isinstance(found, ScaledObjectStatus)
    assert (found.state, found.active, found.paused, found.problem) == ("Active", True, False, False)
    assert (found.current_replicas, found.desired_replicas) == (1, 3)
    assert [str(m) for m in found.metrics] == ["s0-kafka-task-events 240/50 (avg)"]


@pytest.mark.parametrize(("status", "annotations", "state", "problem"), [
    ({"conditions": [{"type": "Ready", "status": "True"}, {"type": "Paused", "status": "True",
                                                             "reason": "ScaledObjectPaused"}]}, {}, "Paused", False),
    ({"conditions": [{"type": "Ready", "status": "True"}]}, {"autoscaling.keda.sh/paused": "true"}, "Paused", False),
    ({"conditions": [{"type": "Ready", "status": "True"}, {"type": "Active", "status": "False"}]}, {}, "Idle", False),
    ({"conditions": [{"type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed",
                      "message": "ScaledObject doesn't have correct triggers specification"}]}, {}, "NotReady", True),
    ({"conditions": [{"type": "Ready", "status": "True"}, {"type": "Fallback", "status": "True",
                                                             "reason": "FallbackExists"}]}, {}, "Fallback", True),
    ({"conditions": [{"type": "Ready", "status": "True"}], "health": {"s0": {"status": "Failing"}}}, {},
     "Failing", True),
    ({}, {}, "Unknown", True),
])
def test_scaled_object_states(status: dict[str, Any], annotations: dict[str, str], state: str, problem: bool) -> None:
    so = obj("ScaledObject", "audit", spec={"scaleTargetRef": {"name": "audit"}}, status=status or None)
    so["metadata"]["annotations"] = annotations
    found = one([so], "ScaledObject")
    assert (found.state, found.problem) == (state, problem)


@pytest.mark.parametrize(("not_after_days", "conditions", "state", "problem"), [
    (60, ready("True", "Ready", "Certificate is up to date and has not expired"), "Ready", False),
    (5, [*ready("True", "Ready"), {"type": "Issuing", "status": "False", "reason": "Failed",
                                   "message": "order is in invalid state"}], "Expiring", True),
    (-2, ready("False", "Expired", "Certificate expired"), "Expired", True),
    (80, ready("False", "DoesNotExist", "Issuing certificate as Secret does not exist"), "NotReady", True),
    (70, [*ready("True"), {"type": "Issuing", "status": "True", "reason": "Renewing", "message": "renewal"}],
     "Issuing", False),
])
def test_certificate_days_left_and_readiness(not_after_days: float, conditions: list[dict[str, Any]], state: str,
                                             problem: bool) -> None:
    from console.model.conditions import format_time
    cert = obj("Certificate", "todo-tls", spec={"dnsNames": ["todo.example.com"], "secretName": "todo-tls",
                                               "issuerRef": {"kind": "ClusterIssuer", "name": "letsencrypt-prod"}},
               status={"conditions": conditions, "notAfter": format_time(NOW + not_after_days * DAY)})
    found = one([cert], "Certificate")
    assert isinstance(found, CertificateStatus)
    assert (found.state, found.problem) == (state, problem)
    assert found.days_left == pytest.approx(not_after_days)
    assert found.issuer == "ClusterIssuer/letsencrypt-prod"
    if state == "Expiring":
        assert found.message == "expires in 5.0 days; renewal: Failed: order is in invalid state"


def test_hpa_metrics_and_conditions() -> None:
    spec = {"scaleTargetRef": {"kind": "Deployment", "name": "backend"}, "minReplicas": 1, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                     "averageUtilization": 70}}}]}
    healthy = one([obj("HorizontalPodAutoscaler", "backend", spec=spec, status={
        "currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 91}}}],
        "conditions": [{"type": "AbleToScale", "status": "True"}, {"type": "ScalingActive", "status": "True"}]})],
        "HorizontalPodAutoscaler")
    assert isinstance(healthy, HpaStatus)
    assert (healthy.state, healthy.problem, [str(m) for m in healthy.metrics]) == ("Scaling", False, ["cpu 91%/70%"])
    no_metrics = one([obj("HorizontalPodAutoscaler", "backend", spec=spec, status={
        "currentReplicas": 1, "desiredReplicas": 1, "conditions": [{"type": "ScalingActive", "status": "False",
        "reason": "FailedGetResourceMetric", "message": "unable to get metrics for resource cpu"}]})],
        "HorizontalPodAutoscaler")
    assert (no_metrics.state, no_metrics.problem) == ("NotScaling", True)
    assert [str(m) for m in no_metrics.metrics] == ["cpu <unknown>/70%"]
    limited = one([obj("HorizontalPodAutoscaler", "backend", spec=spec, status={
        "currentReplicas": 3, "desiredReplicas": 3, "conditions": [{"type": "ScalingLimited", "status": "True",
                                                                    "reason": "TooManyReplicas"}]})],
        "HorizontalPodAutoscaler")
    assert (limited.state, limited.problem) == ("Limited", False)
