"""What the dev sidecar does not implement is refused, the way daprd refuses what it cannot load.

daprd exits at start-up when a component cannot be loaded, unless the Component says
`spec.ignoreErrors: true` (dapr/dapr pkg/runtime/processor/components.go: "process component X
error: ...", "Ignoring error processing component"), and when a declarative Subscription's route
rule is invalid (pkg/runtime/processor/subscriptions.go). The sidecar stops the same way, with one
`error:` line and exit status 2, for what it cannot serve: component types it does not implement,
CEL route rules, and an app protocol other than HTTP (daprd's --app-protocol grpc/grpcs/https/h2c:
the AppCallback gRPC service is not implemented). A programmatic subscription with rules is not
started (an error in the log), as daprd does with a subscription it cannot parse.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from console.sandbox.ports import free_port
from tests.utils.sidecars import REPO, Sidecar, write_resources

from .shared_resources import ROUTED, T

REDIS = """
    apiVersion: dapr.io/v1alpha1
    kind: Component
    metadata:
      name: cache
    spec:
      type: state.redis
      version: v1
    """
RULES = """
    apiVersion: dapr.io/v2alpha1
    kind: Subscription
    metadata: {name: by-type}
    spec:
      pubsubname: kafka-pubsub
      topic: task-events
      routes:
        rules:
          - {match: 'event.type == "todo.task.created.v1"', path: /created}
        default: /other
    """


@pytest.mark.parametrize(("docs", "extra", "error"), [
    pytest.param({"cache.yaml": REDIS}, [],
                 "process component cache error: state.redis/v1 is not implemented by the dev sidecar (it "
                 "implements pubsub.kafka/v1, state.postgresql/v1 and v2, secretstores.kubernetes/v1)",
                 id="an unimplemented component type"),
    pytest.param({"rules.yaml": RULES}, [],
                 "subscription by-type: routes.rules (CEL route rules) are not implemented by the dev sidecar; use "
                 "one routes.default per subscription (see console/sandbox/sidecar/README.md)",
                 id="route rules"),
    pytest.param({}, ["--app-protocol", "grpc", "--app-port", "1"],
                 "app protocol grpc is not implemented by the dev sidecar: it calls its app over HTTP only "
                 "(no gRPC AppCallback; see console/sandbox/sidecar/README.md)",
                 id="a gRPC app"),
])
def test_what_it_cannot_serve_stops_it_at_start(tmp_path: Path, docs: dict[str, str], extra: list[str],
                                                error: str) -> None:
    resources = write_resources(tmp_path / "resources", docs)
    result = subprocess.run(
        [sys.executable, "-m", "console.sandbox.sidecar", "--app-id", "refused", "--dapr-http-port", str(free_port()),
         "--dapr-grpc-port", str(free_port()), "--state-dir", str(tmp_path / "state"),
         "--resources-path", str(resources), "--kafka-bootstrap", f"127.0.0.1:{free_port()}", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {error}"]


def test_ignore_errors_lets_it_start_without_that_component(backend: Sidecar) -> None:
    # the shared resources declare `cache` (state.redis) with ignoreErrors: true
    names = {c["name"] for c in httpx.get(f"{backend.http}/v1.0/metadata").json()["components"]}
    assert "cache" not in names
    assert "statestore" in names
    assert any(line.get("msg") == "Ignoring error processing component" for line in backend.logs())


def test_a_programmatic_subscription_with_rules_is_not_started(worker: Sidecar) -> None:
    # the worker app's /dapr/subscribe lists T["prog"] (a plain route) and ROUTED (with rules)
    topics = {s["topic"] for s in httpx.get(f"{worker.http}/v1.0/metadata").json()["subscriptions"]}
    assert ROUTED not in topics
    assert T["prog"] in topics
    assert any(line.get("msg") == "subscription refused" and line.get("topic") == ROUTED for line in worker.logs())
