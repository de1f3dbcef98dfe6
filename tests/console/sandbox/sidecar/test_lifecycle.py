"""Lifecycle and failure behaviour: health gating on the app, broker outages, SIGTERM, bad input.

Health: https://docs.dapr.io/reference/api/health_api/ (outbound ready before the app; full
health once the app channel is up, as daprd's blockUntilAppIsReady). Resiliency outbound policy
for the pubsub component: https://docs.dapr.io/operations/resiliency/targets/#components
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from dapr.clients.exceptions import DaprGrpcError

from console.sandbox.broker import start_tansu
from console.sandbox.ports import free_port
from tests.utils.dapr_sdk import sdk_settings
from tests.utils.kafka_topics import create_topics
from tests.utils.sidecars import REPO, Sandbox, make_sandbox
from tests.utils.stub_apps import start_app
from tests.utils.waiting import wait_until

from .shared_resources import BASE_DOCS


def test_health_waits_for_the_app_and_sigterm_stops_cleanly(sandbox: Sandbox) -> None:
    app_port = free_port()
    sidecar = sandbox.start("latecomer", app_port, wait=False)
    sidecar.wait_ready(path="/v1.0/healthz/outbound")
    resp = httpx.get(f"{sidecar.http}/v1.0/healthz")
    assert resp.status_code == 500
    assert resp.json()["errorCode"] == "ERR_HEALTH_NOT_READY"
    app = start_app({}, port=app_port)
    try:
        sidecar.wait_ready(timeout=10)
        assert sidecar.stop() == 0  # SIGTERM: clean exit
        messages = [line.get("msg") for line in sidecar.logs()]
        assert messages[-2:] == ["shutting down", "dapr sidecar stopped"]
        assert all("time" in line and "level" in line for line in sidecar.logs())  # JSON lines only
    finally:
        app.stop()


def test_publish_with_the_broker_down_fails_after_the_outbound_policy(tmp_path: Path) -> None:
    # outbound policy here: timeout 1s per attempt, 2 retries 100ms apart -> a bounded failure
    dead = f"127.0.0.1:{free_port()}"
    sb = make_sandbox(tmp_path, dead, BASE_DOCS)
    sidecar = sb.start("lonely", None)
    try:
        # The client's own deadline well past the policy's ~3.2 s: the SDK's settings are process-wide, and
        # an earlier test in the same worker (a service's DaprGateway sets them) may have left 1 s there.
        with sdk_settings(DAPR_API_TIMEOUT_SECONDS=30), sidecar.client() as client:
            started = time.monotonic()
            with pytest.raises(DaprGrpcError) as err:
                client.publish_event("kafka-pubsub", "task-events", b"{}", data_content_type="application/json")
            elapsed = time.monotonic() - started
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert err.value.details().startswith("error when publishing to topic task-events in pubsub kafka-pubsub: ")
        assert err.value.error_code() == "DAPR_PUBSUB_PUBLISH_MESSAGE"
        assert 0.2 < elapsed < 8
        retries = [line for line in sidecar.logs() if line.get("msg") == "operation failed, retrying"]
        assert len(retries) == 2
    finally:
        sidecar.stop()


def test_a_caller_deadline_ends_the_publish_retries(tmp_path: Path) -> None:
    # daprd runs the outbound policy inside the request context: when the caller's deadline passes,
    # the retries stop, so a publish the caller gave up on is not sent later behind its back.
    silent = socket.socket()  # a "broker" that accepts connections and never answers: attempts time out
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    sb = make_sandbox(tmp_path, f"127.0.0.1:{silent.getsockname()[1]}", BASE_DOCS)
    sidecar = sb.start("impatient", None)
    # DAPR_API_TIMEOUT_SECONDS: the policy would take ~3.2 s (1 s attempts, 2 retries)
    try:
        with sdk_settings(DAPR_API_TIMEOUT_SECONDS=1.5), sidecar.client() as client, \
                pytest.raises(DaprGrpcError) as err:
            client.publish_event("kafka-pubsub", "task-events", b"{}", data_content_type="application/json")
        # the sidecar's own answer may just beat the client's deadline: either way the call ended
        assert err.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL)
        wait_until(lambda: any(line.get("msg") == "publish failed" for line in sidecar.logs()), 5,
                   message="the sidecar to give up")
        retries = [line for line in sidecar.logs() if line.get("msg") == "operation failed, retrying"]
        assert len(retries) <= 1  # the policy allows 2, but the caller was gone after the first
    finally:
        sidecar.stop()
        silent.close()


OUTAGE_SUB = """
    apiVersion: dapr.io/v2alpha1
    kind: Subscription
    metadata: {name: phoenix-outage}
    spec:
      pubsubname: kafka-pubsub
      topic: outage
      routes: {default: /events/outage}
      deadLetterTopic: outage-dlq
    scopes: [phoenix]
    """


def test_delivery_resumes_after_a_broker_restart(tmp_path: Path) -> None:
    port = free_port()
    broker = start_tansu(tmp_path / "b1", port=port)
    app = start_app({"/events/outage": (200, b"")})
    sb = make_sandbox(tmp_path / "sb", broker.bootstrap, {**BASE_DOCS, "outage.yaml": OUTAGE_SUB})
    try:
        create_topics(broker.bootstrap, {"outage": 1, "outage-dlq": 1})
        sidecar = sb.start("phoenix", app.port)
        with sidecar.client() as client:
            client.publish_event("kafka-pubsub", "outage", json.dumps({"n": "before"}),
                                 data_content_type="application/json")
            app.wait_calls("/events/outage")
            broker.stop()
            broker = start_tansu(tmp_path / "b2", port=port)  # memory storage: empty again
            create_topics(broker.bootstrap, {"outage": 1, "outage-dlq": 1})

            def delivered_after_restart() -> bool:
                with contextlib.suppress(DaprGrpcError):  # the producer is still reconnecting
                    client.publish_event("kafka-pubsub", "outage", json.dumps({"n": "after"}),
                                         data_content_type="application/json")
                return any(c.json()["data"]["n"] == "after" for c in app.calls("/events/outage"))
            wait_until(delivered_after_restart, 30, 0.3, "delivery after the broker restart")
        assert sidecar.stop() == 0
    finally:
        app.stop()
        sb.stop_all()
        broker.stop()


def test_bad_input_gets_one_line(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "console.sandbox.sidecar"]
    missing = subprocess.run([*run, "--app-id", "x"], cwd=REPO, capture_output=True, text=True, timeout=30,
                             check=False)
    assert missing.returncode == 2
    assert "the following arguments are required" in missing.stderr
    assert "Traceback" not in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        result = subprocess.run([*run, "--app-id", "x", "--dapr-http-port", str(busy), "--dapr-grpc-port",
                                 str(free_port()), "--state-dir", str(tmp_path), "--resources-path", str(tmp_path)],
                                cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: cannot listen on 127.0.0.1:{busy} (HTTP): Address already in use"]
    no_db = subprocess.run([*run, "--app-id", "x", "--dapr-http-port", str(free_port()), "--dapr-grpc-port",
                            str(free_port()), "--state-dir", str(tmp_path), "--resources-path", str(tmp_path),
                            "--database-url", f"postgresql://nobody@127.0.0.1:{free_port()}/none"],
                           cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert no_db.returncode == 2
    assert len(no_db.stderr.strip().splitlines()) == 1
    assert no_db.stderr.startswith("error: ")
    assert "Traceback" not in no_db.stderr
