"""The hub's isolation, against real parts: the stand-in API server (driven through the official client), a tansu
broker that hangs (SIGSTOP) and comes back (SIGCONT), the Loki stand-in, and a Prometheus-shaped HTTP server
that holds its answer until told.

A source that fails mid-way records its error, keeps its last good data (stale) and recovers when it comes
back, while the other areas keep refreshing; two refreshes of one area never overlap.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from console.live.hub import Hub, make_hub
from console.model.kafka import OutgoingRecord, TopicPartition
from console.sandbox.broker import Broker, start_tansu
from console.sandbox.manifests import load_manifests, topics_to_create
from console.sandbox.ports import free_port
from console.sandbox.topics import ensure_topics
from console.sources.kafka import KafkaSource
from console.target import ClusterTarget
from tests.console.observability.loki_standin import running_loki
from tests.console.sandbox.conftest import require_tansu
from tests.utils.kube_apiserver import StandInCluster
from tests.utils.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def environment(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The stand-in cluster, with Loki's stand-in for logs and nothing listening where Prometheus should be."""
    monkeypatch.setenv("TODO_CONSOLE_REQUEST_TIMEOUT_S", "3")
    monkeypatch.setenv("TODO_CONSOLE_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    with running_loki() as (url, _loki):
        monkeypatch.setenv("TODO_CONSOLE_LOKI_URL", url)
        yield kubeconfig


def stand_in(kubeconfig: Path) -> ClusterTarget:
    """The target, made after the TODO_CONSOLE_* settings it reads are in place."""
    return ClusterTarget(context=None, kubeconfig=kubeconfig, namespace="todo-app", in_cluster=False)


@contextmanager
def kafka_with_lag(workdir: Path) -> Iterator[Broker]:
    """A tansu of its own with kustomize/base's topics, and the worker's group 3 records behind on task-events."""
    require_tansu()
    broker = start_tansu(workdir)
    try:
        ensure_topics(broker.bootstrap, topics_to_create(load_manifests(REPO / "kustomize" / "base")))
        with KafkaSource(broker.bootstrap) as kafka:
            kafka.produce("task-events", [OutgoingRecord(b"%d" % i, partition=0) for i in range(5)])
            kafka.commit("worker", {TopicPartition("task-events", 0): 2})
        yield broker
    finally:
        resume(broker)
        broker.stop()


def hang(broker: Broker) -> None:
    assert broker.process is not None
    os.kill(broker.process.pid, signal.SIGSTOP)


def resume(broker: Broker) -> None:
    if broker.process is not None and broker.process.poll() is None:
        os.kill(broker.process.pid, signal.SIGCONT)


def worker_lag(hub: Hub) -> int:
    view = hub.view("lag").value
    assert view is not None
    return next(g.total_lag for g in view.groups if g.group == "worker")


@pytest.mark.broker
def test_kafka_failing_mid_way_keeps_its_lag_stale_and_recovers_while_the_rest_refreshes(
        environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with kafka_with_lag(tmp_path / "broker") as broker:
        bootstrap = broker.bootstrap
        monkeypatch.setenv("TODO_CONSOLE_KAFKA_BOOTSTRAP", bootstrap)
        with make_hub(stand_in(environment)) as hub:
            assert (hub.refresh_workloads(), hub.refresh_lag(), hub.refresh_logs()) == ("ok", "ok", "ok")
            assert worker_lag(hub) == 3
            good = hub.view("lag")

            hang(broker)  # the broker stops answering from here on
            assert hub.refresh_lag() == "failed"
            stale = hub.view("lag")
            assert (stale.state, stale.value, stale.updated_at) == ("stale", good.value, good.updated_at)
            assert str(stale.error).startswith(f"kafka at {bootstrap}: ")
            assert (stale.failing_since or 0.0) >= (good.updated_at or 0.0) > 0
            (finding,) = [f for f in hub.findings() if f.area == "sources"]
            assert finding.subject == "kafka"
            assert "consumer lag stale; showing what it said" in finding.message

            before = hub.view("workloads").updated_at or 0.0
            assert (hub.refresh_workloads(), hub.refresh_logs()) == ("ok", "ok")  # the other areas do not notice
            assert (hub.view("workloads").updated_at or 0.0) > before
            assert hub.view("logs").state == "ok"

            resume(broker)
            wait_until(lambda: hub.refresh_lag() == "ok", timeout=60, interval=0.5, message="Kafka to answer again")
            recovered = hub.view("lag")
            assert (recovered.state, recovered.error, recovered.failing_since) == ("ok", None, None)
            assert recovered.value is not None
            assert good.value is not None
            assert recovered.value.at > good.value.at
            assert recovered.value.samples == good.value.samples + 1  # a failed refresh adds no sample
            assert worker_lag(hub) == 3
            assert not [f for f in hub.findings() if f.area == "sources"]


def test_the_api_server_failing_mid_way_makes_workloads_stale_until_it_returns(
        environment: Path, cluster: StandInCluster) -> None:
    with make_hub(stand_in(environment)) as hub:
        assert hub.refresh_workloads() == "ok"
        good = hub.view("workloads")
        cluster.server.stop()
        wait_until(lambda: hub.refresh_workloads() == "failed", timeout=60, interval=0.2,
                   message="the caches to notice the API server is gone")
        stale = hub.view("workloads")
        assert (stale.state, stale.value) == ("stale", good.value)
        assert str(stale.error).startswith(f"Kubernetes API at {cluster.server.url}: ")
        assert hub.refresh_logs() == "ok"  # Loki keeps answering meanwhile

        cluster.server.start()
        cluster.crash_loop("backend")  # a change made while the caches were away must reach the hub
        def backend_crash_looping() -> bool:
            view = hub.view("workloads").value
            return view is not None and any(p.service == "backend" and p.problem for p in view.pods)

        wait_until(lambda: hub.refresh_workloads() == "ok" and backend_crash_looping(), timeout=90, interval=0.5,
                   message="the caches to relist and see backend crash-looping")
        assert hub.view("workloads").failing_since is None
        assert [f.subject for f in hub.findings() if f.area == "pods"] == ["backend"]


@dataclass
class HeldPrometheus:
    """Answers /api/v1/rules like Prometheus, but only once `release` is set; counts requests in flight."""

    release: threading.Event = field(default_factory=threading.Event)
    requests: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def held_prometheus() -> Iterator[tuple[str, HeldPrometheus]]:
    held = HeldPrometheus()
    body = json.dumps({"status": "success", "data": {"groups": [{"name": "todo", "rules": [
        {"type": "alerting", "name": "TodoScrapeTargetDown", "health": "ok", "duration": 300, "alerts": []}]}]}
    }).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with held.lock:
                held.requests += 1
                held.in_flight += 1
                held.most_in_flight = max(held.most_in_flight, held.in_flight)
            held.release.wait(30)
            with held.lock:
                held.in_flight -= 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", held
    finally:
        held.release.set()
        server.shutdown()
        server.server_close()


def test_refreshes_of_one_area_never_overlap_and_a_slow_one_holds_up_no_other(
        kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with held_prometheus() as (url, held):
        monkeypatch.setenv("TODO_CONSOLE_PROMETHEUS_URL", url)
        monkeypatch.setenv("TODO_CONSOLE_REQUEST_TIMEOUT_S", "60")
        with make_hub(stand_in(kubeconfig)) as hub:
            outcomes: list[str] = []
            callers = [threading.Thread(target=lambda: outcomes.append(hub.refresh_alerts())) for _ in range(6)]
            callers[0].start()
            wait_until(lambda: held.requests == 1, message="the first refresh to reach Prometheus")
            for caller in callers[1:]:
                caller.start()
            for caller in callers[1:]:
                caller.join(10)
            assert outcomes == ["busy"] * 5  # answered at once, without a request of their own
            assert hub.refresh_workloads() == "ok"  # while alerts hang, another area refreshes
            held.release.set()
            callers[0].join(10)
            assert outcomes == ["busy"] * 5 + ["ok"]
            assert (held.requests, held.most_in_flight) == (1, 1)
            view = hub.view("alerts")
            assert view.state == "ok"
            assert view.value is not None
            assert view.value.rules == 1
            assert hub.refresh_alerts() == "ok"  # released: the next refresh is an ordinary one
            assert (held.requests, held.most_in_flight) == (2, 1)
