"""The shared sandbox's resources for the dev sidecar's conformance tests: topics, components,
resiliency, subscriptions and secrets (fixtures are in conftest.py, the helpers in tests/utils/).

They are written to a temporary directory, independent of kustomize/base, so each test can name
the daprd behaviour it checks without depending on the product's manifests.
"""

from __future__ import annotations

import uuid

# ---- the shared sandbox's resources: topics, components, resiliency, subscriptions ------------------
RUN = uuid.uuid4().hex[:6]
T = {name: f"{name}-{RUN}" for name in (
    "ok", "ok-dlq", "fail", "fail-dlq", "retry", "retry-dlq", "drop", "drop-dlq", "nf", "nf-dlq", "nodlq",
    "raw", "order", "prog", "pub")}
PARTITIONS = {T["order"]: 3, T["pub"]: 3}
ROUTED = f"routed-{RUN}"  # a programmatic subscription with route rules, which the sidecar refuses


def _subscription(name: str, topic: str, route: str, dlq: str | None = None, extra: str = "") -> str:
    dlq_line = f"\n          deadLetterTopic: {T[dlq]}" if dlq else ""
    return f"""
        apiVersion: dapr.io/v2alpha1
        kind: Subscription
        metadata: {{name: {name}}}
        spec:
          pubsubname: kafka-pubsub
          topic: {T[topic]}
          routes:
            default: {route}{extra}{dlq_line}
        scopes: [worker]
        """


def kafka_pubsub_component(*metadata: str) -> str:
    """A `kafka-pubsub` Component for a test sandbox: consumerGroup "{appID}" (as in kustomize/base),
    then `metadata` items, each a YAML flow mapping like '{name: initialOffset, value: oldest}'."""
    items = "".join(f"\n  - {item}" for item in ('{name: consumerGroup, value: "{appID}"}', *metadata))
    return ("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: kafka-pubsub}\n"
            "spec:\n  type: pubsub.kafka\n  version: v1\n  metadata:" + items + "\n")


BASE_DOCS = {
    "components.yaml": """
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: kafka-pubsub, namespace: todo-app}
        spec:
          type: pubsub.kafka
          version: v1
          metadata:
            - {name: brokers, value: "todo-kafka-kafka-bootstrap.kafka.svc:9092"}
            - {name: consumerGroup, value: "{appID}"}
            - {name: authType, value: none}
        ---
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: statestore}
        spec:
          type: state.postgresql
          version: v2
          metadata:
            - name: connectionString
              secretKeyRef: {name: postgres, key: url}
        ---
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: secretstore}
        spec: {type: secretstores.kubernetes, version: v1}
        ---
        # a second store, whose outbound policy has a circuit breaker (test_state_resiliency.py)
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: guarded}
        spec: {type: state.postgresql, version: v2}
        ---
        # a type the sidecar does not implement: daprd would start without it, as here (test_refusals.py)
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: cache}
        spec: {type: state.redis, version: v1, ignoreErrors: true}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: not-dapr}
        data: {a: b}
        """,
    "resiliency.yaml": """
        apiVersion: dapr.io/v1alpha1
        kind: Resiliency
        metadata: {name: todo-resiliency}
        spec:
          policies:
            timeouts:
              quick: 1s
            retries:
              inbound: {policy: constant, duration: 50ms, maxRetries: 2}
              outbound: {policy: constant, duration: 100ms, maxRetries: 2}
              app: {policy: constant, duration: 20ms, maxRetries: 2}
              appcodes:
                policy: constant
                duration: 20ms
                maxRetries: 2
                matching: {httpStatusCodes: "502-504"}
              state: {policy: constant, duration: 20ms, maxRetries: 2}
            circuitBreakers:
              appcb: {maxRequests: 1, timeout: 2s, trip: consecutiveFailures >= 6}
              statecb: {maxRequests: 1, timeout: 1s, trip: consecutiveFailures >= 3}
          targets:
            apps:
              flaky: {retry: app, circuitBreaker: appcb}
              picky: {retry: appcodes}
              slow: {timeout: quick}
            components:
              kafka-pubsub:
                inbound: {retry: inbound}
                outbound: {retry: outbound, timeout: quick}
              statestore:
                outbound: {retry: state}
              guarded:
                outbound: {retry: state, circuitBreaker: statecb}
        """,
    "subscriptions.yaml": "---".join([
        _subscription("worker-ok", "ok", "/events/ok", "ok-dlq"),
        _subscription("worker-fail", "fail", "/events/fail", "fail-dlq"),
        _subscription("worker-retry", "retry", "/events/retry", "retry-dlq"),
        _subscription("worker-drop", "drop", "/events/drop", "drop-dlq"),
        _subscription("worker-nf", "nf", "/events/missing", "nf-dlq"),
        _subscription("worker-nodlq", "nodlq", "/events/nodlq"),
        _subscription("worker-raw", "raw", "/events/raw", extra="\n          metadata: {rawPayload: \"true\"}"),
        _subscription("worker-order", "order", "/events/order"),
        """
        apiVersion: dapr.io/v2alpha1
        kind: Subscription
        metadata: {name: audit-only}
        spec:
          pubsubname: kafka-pubsub
          topic: not-for-worker
          routes: {default: /events/audit}
        scopes: [audit]
        """,
    ]),
}
SECRETS = {"postgres": {"url": "postgresql://todo@db/todo", "password": "s3cret"}, "jwt": {"key": "k"}}
