"""The cross-source glue on a cluster: the dead-letter topics come from the API server's Subscriptions, and a
dead letter daprd wrote (no reason on the message) gets its reason from Loki by its CloudEvent id; a Loki that
is down costs the reasons, never the listing. The `dlq` command and the hub build it the same way."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from console import cli
from console.live.hub import make_hub
from console.model.kafka import OutgoingRecord
from console.sandbox.broker import Broker, start_tansu
from console.sandbox.manifests import load_manifests, topics_to_create
from console.sandbox.ports import free_port
from console.sandbox.topics import ensure_topics
from console.sources.kafka import KafkaSource
from console.target import ClusterTarget
from tests.console.observability.loki_standin import running_loki
from tests.console.sandbox.conftest import require_tansu
from tests.utils.kube_apiserver import StandInCluster

pytestmark = pytest.mark.broker
REPO = Path(__file__).resolve().parents[3]
NS = 1_000_000_000


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    require_tansu()
    running = start_tansu(tmp_path / "broker")
    try:
        ensure_topics(running.bootstrap, topics_to_create(load_manifests(REPO / "kustomize" / "base")))
        yield running
    finally:
        running.stop()


def daprd_dead_letter(bootstrap: str, event_id: str) -> None:
    """What daprd forwards to a deadLetterTopic: the CloudEvent, with the original message's metadata only."""
    event = {"specversion": "1.0", "id": event_id, "source": "backend", "type": "todo.task.completed.v1",
             "datacontenttype": "application/json", "data": {"entity_id": "task-7"}}
    headers = (("__topic", b"task-events"), ("__partition", b"1"), ("__offset", b"41"), ("__key", b"task-7"),
               ("pubsubName", b"kafka-pubsub"))
    with KafkaSource(bootstrap) as kafka:
        kafka.produce("task-events-dlq", [OutgoingRecord(json.dumps(event).encode(), b"task-7", headers, 0)])


def test_a_daprd_dead_letter_gets_its_reason_from_loki_and_loki_down_costs_only_the_reason(
        broker: Broker, kubeconfig: Path, cluster: StandInCluster, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    event_id = str(uuid.uuid4())
    daprd_dead_letter(broker.bootstrap, event_id)
    monkeypatch.setenv("TODO_CONSOLE_KAFKA_BOOTSTRAP", broker.bootstrap)
    with running_loki() as (url, loki):
        loki.push({"namespace": "todo-app", "app": "worker", "container": "app", "pod": "worker-1"},
                  int((time.time() - 30) * NS),
                  json.dumps({"level": "warning", "service": "worker", "msg": "event dropped", "event_id": event_id,
                              "error": "recurring task task-7 has no due date"}))
        monkeypatch.setenv("TODO_CONSOLE_LOKI_URL", url)
        capsys.readouterr()
        assert cli.main(["dlq", "show", "task-events-dlq", "--json"]) == 0
        (message,) = json.loads(capsys.readouterr().out)["messages"]
        assert (message["event_id"], message["original"]) == (
            event_id, {"topic": "task-events", "partition": 1, "offset": 41})
        assert message["reason"] == "worker: event dropped: recurring task task-7 has no due date"
        assert any(event_id in r["query"] for r in loki.requests)  # asked by the CloudEvent id

        target = ClusterTarget(context=None, kubeconfig=kubeconfig, namespace="todo-app", in_cluster=False)
        with make_hub(target) as hub:  # the hub's dead letters are built the same way
            assert hub.with_dead_letters(lambda d: d.reason(d.browse("task-events-dlq")[0])) == message["reason"]

    monkeypatch.setenv("TODO_CONSOLE_LOKI_URL", f"http://127.0.0.1:{free_port()}")
    assert cli.main(["dlq", "show", "task-events-dlq", "--json"]) == 0
    captured = capsys.readouterr()
    (message,) = json.loads(captured.out)["messages"]
    assert message["reason"] is None
    assert captured.err.startswith("note: failure reasons from the logs are missing: loki at http://127.0.0.1:")
    assert captured.err.count("\n") == 1


def test_the_dead_letter_topics_are_the_clusters_own_subscriptions(
        broker: Broker, kubeconfig: Path, cluster: StandInCluster, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A Subscription deleted from the cluster takes its dead-letter topic's app with it: the wiring is the API
    server's, not the rendered overlay's."""
    monkeypatch.setenv("TODO_CONSOLE_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("TODO_CONSOLE_LOKI_URL", f"http://127.0.0.1:{free_port()}")
    capsys.readouterr()
    assert cli.main(["dlq", "list", "--json"]) == 0
    before = {d["topic"]: d["apps"] for d in json.loads(capsys.readouterr().out)["dlqs"]}
    assert before["reminders-dlq"] == ["audit", "notification"]

    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig), context="stand-in")
    try:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            "dapr.io", "v2alpha1", "todo-app", "subscriptions", "audit-reminders")
    finally:
        api.close()
    assert cli.main(["dlq", "list", "--json"]) == 0
    after = {d["topic"]: d["apps"] for d in json.loads(capsys.readouterr().out)["dlqs"]}
    assert after["reminders-dlq"] == ["notification"]
