"""Publish-to-delivery latency through the dev sidecars and the broker, against the raw Kafka floor.

Run by hand: ``python tests/bench/bench_publish_latency.py [--messages 200]``.

One tansu broker, topics from kustomize/base. Two measurements in the same run, same broker:

- sidecar path: a publisher sidecar (app-id `backend`, allowed to publish `task-updates`) takes
  ``POST /v1.0/publish/kafka-pubsub/task-updates``; the subscriber sidecar (app-id `websocket`,
  whose real Subscription routes `task-updates` to `/events/task-updates`) delivers it to a tiny
  receiver app standing in for the websocket service. Latency = receiver arrival - publish call.
- raw floor: a kafka-python-ng producer and consumer (static membership, as tansu needs) on the
  same topic; latency = poll arrival - send. Measured with the consumer's fetch max wait at
  the sidecar's own setting (FETCH_MAX_WAIT_MS, 25 ms unless SIDECAR_FETCH_MAX_WAIT_MS says
  otherwise) and at 500 ms (the client default), since end-to-end latency on tansu is bounded by it.

Messages are sent one at a time (each waits for its arrival), so the figures are latency, not
throughput. Prints p50/p99 and the sidecar/raw ratio.

Then what each sidecar operation costs in CPU (from the sidecars' own /proc counters, net of their
idle rate measured just before), beside daprd's published figure (0.48 vCPU per 1,000 requests per
second of service invocation: 0.48 ms of CPU per request): a publish through the official SDK's gRPC
client (the publisher sidecar's CPU) and its delivery to the app (the subscriber sidecar's), a state
save and a state get (gRPC, as the services call them), and a service invocation over HTTP (the SDK's
default) to the stand-in app. Writes tests/bench/results/publish_latency.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
import httpx
from dapr.clients import DaprClient
from kafka import KafkaConsumer, KafkaProducer

from console.sandbox import catalog
from console.sandbox.broker import start_tansu
from console.sandbox.layout import SandboxLayout
from console.sandbox.manifests import load_manifests, topics_to_create
from console.sandbox.plan import write_json_atomic
from console.sandbox.ports import free_port
from console.sandbox.procs import ManagedProcess
from console.sandbox.secrets import write_secrets
from console.sandbox.sidecar.subscriber import FETCH_MAX_WAIT_MS
from console.sandbox.supervisor import probe_url
from console.sandbox.topics import ensure_topics
from tests.bench import process_cost
from tests.utils.dapr_sdk import sdk_settings

RESULTS = REPO / "tests" / "bench" / "results" / "publish_latency.json"
TOPIC = "task-updates"
PUBLISHER, SUBSCRIBER = "backend", "websocket"
INVOKER = "worker"  # todo-config lets the worker POST /internal/** (access control denies the others)
WAIT_S = 10.0
DAPRD_CPU_MS_PER_REQUEST = 0.48  # docs.dapr.io performance: 0.48 vCPU per 1,000 invocations per second


class Arrivals:
    """Arrival times by message id, with a condition so the sender can wait for each one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seen: dict[str, int] = {}

    def record(self, msg_id: str) -> None:
        now = time.perf_counter_ns()
        with self._cond:
            self._seen.setdefault(msg_id, now)
            self._cond.notify_all()

    def wait(self, msg_id: str, timeout: float) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: msg_id in self._seen, timeout)
            return self._seen.get(msg_id)


def receiver(arrivals: Arrivals, port: int) -> ThreadingHTTPServer:
    """The stand-in subscriber app: records each CloudEvent's data.id, answers SUCCESS."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = json.loads(body)
                data = event.get("data")
                data = json.loads(data) if isinstance(data, str) else data
                arrivals.record(str(data["id"]))
            except (ValueError, KeyError, TypeError):
                pass
            self._answer(200, b'{"status":"SUCCESS"}')

        def do_GET(self) -> None:
            self._answer(200, b"[]" if self.path == "/dapr/subscribe" else b"{}")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": round(q[49], 2), "p99": round(q[98], 2), "mean": round(statistics.fmean(ordered), 2),
            "max": round(ordered[-1], 2), "n": len(ordered)}


def measure(send: Any, arrivals: Arrivals, count: int) -> list[float]:
    """Send `count` messages one at a time; ms from send to arrival for each that arrived."""
    samples = []
    for _ in range(count):
        msg_id = uuid.uuid4().hex
        started = time.perf_counter_ns()
        send(msg_id)
        arrived = arrivals.wait(msg_id, WAIT_S)
        if arrived is not None:
            samples.append((arrived - started) / 1e6)
    return samples


def warm_up(send: Any, arrivals: Arrivals, timeout: float = 60.0) -> bool:
    """Until one message gets through (the first consumer-group join takes seconds on tansu)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg_id = uuid.uuid4().hex
        send(msg_id)
        if arrivals.wait(msg_id, 2.0) is not None:
            return True
    return False


def raw_floor(bootstrap: str, count: int, fetch_wait_ms: int) -> dict[str, float]:
    arrivals = Arrivals()
    stop = threading.Event()
    consumer = KafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id=f"bench-raw-{fetch_wait_ms}",
        group_instance_id=f"bench-raw-{uuid.uuid4().hex[:8]}", auto_offset_reset="latest",
        fetch_max_wait_ms=fetch_wait_ms,
    )

    def consume() -> None:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                for record in records:
                    arrivals.record(record.value.decode())

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)

    def send(msg_id: str) -> None:
        producer.send(TOPIC, msg_id.encode())
        producer.flush()

    try:
        if not warm_up(send, arrivals):
            raise RuntimeError("raw consumer never received a message")
        return percentiles(measure(send, arrivals, count))
    finally:
        stop.set()
        thread.join(timeout=5)
        consumer.close()
        producer.close()


def sidecar_path(bootstrap: str, workdir: Path, count: int) -> dict[str, Any]:
    layout = SandboxLayout(workdir)
    layout.ensure()
    write_secrets(layout.secrets, database_urls={})
    names = (PUBLISHER, SUBSCRIBER, INVOKER)
    ports = {name: catalog.ServicePorts(free_port(), free_port(), free_port()) for name in names}
    write_json_atomic(layout.registry, catalog.registry(ports))
    arrivals = Arrivals()
    apps = [receiver(arrivals, ports[SUBSCRIBER].app), receiver(Arrivals(), ports[PUBLISHER].app),
            receiver(Arrivals(), ports[INVOKER].app)]
    sidecars = [
        ManagedProcess(catalog.sidecar_process(name, ports[name], layout, bootstrap=bootstrap,
                                               manifests=catalog.MANIFESTS_DIR, database_url=None),
                       layout.log(name + catalog.SIDECAR_SUFFIX))
        for name in names
    ]
    client = httpx.Client(timeout=10)
    url = f"http://127.0.0.1:{ports[PUBLISHER].dapr_http}/v1.0/publish/kafka-pubsub/{TOPIC}"

    def send(msg_id: str) -> None:
        resp = client.post(url, json={"id": msg_id})
        if resp.status_code != 204:
            raise RuntimeError(f"publish answered {resp.status_code}: {resp.text[:200]}")

    try:
        for proc in sidecars:
            proc.start()
        deadline = time.monotonic() + 60
        while not all(probe_url(p.spec.ready_url, p.spec.ready_status) for p in sidecars):
            if time.monotonic() > deadline or any(not p.running() for p in sidecars):
                raise RuntimeError(f"sidecars not ready; see {layout.logs}")
            time.sleep(0.1)
        if not warm_up(send, arrivals):
            raise RuntimeError(f"no delivery through the sidecars; see {layout.logs}")
        latency = percentiles(measure(send, arrivals, count))
        groups = {proc.spec.name: proc.pid or 0 for proc in sidecars}
        with sdk_settings(DAPR_HTTP_PORT=ports[PUBLISHER].dapr_http, DAPR_GRPC_PORT=ports[PUBLISHER].dapr_grpc), \
                DaprClient() as dapr:  # the SDK waits on the sidecar's HTTP health endpoint first
            costs = cost_per_operation(groups, operations(dapr, client, ports, arrivals), count)
        return {**latency, "cpu_ms_per_operation": costs}
    finally:
        client.close()
        for proc in sidecars:
            proc.stop()
        for app in apps:
            app.shutdown()


def operations(dapr: DaprClient, client: httpx.Client, ports: dict[str, catalog.ServicePorts],
               arrivals: Arrivals) -> dict[str, Callable[[], None]]:
    """One call of each operation whose sidecar CPU is measured, as the services make them."""

    def publish_and_deliver() -> None:
        msg_id = uuid.uuid4().hex
        dapr.publish_event("kafka-pubsub", TOPIC, json.dumps({"id": msg_id}), data_content_type="application/json")
        if arrivals.wait(msg_id, WAIT_S) is None:
            raise RuntimeError("a published message was not delivered")

    def save() -> None:
        dapr.save_state("statestore", f"bench-{uuid.uuid4().hex[:8]}", json.dumps({"v": 1}))

    def get() -> None:
        dapr.get_state("statestore", "bench-key")

    invoke_url = f"http://127.0.0.1:{ports[INVOKER].dapr_http}/v1.0/invoke/{SUBSCRIBER}/method/internal/ping"

    def invoke() -> None:
        answer = client.post(invoke_url, json={})
        if answer.status_code != 200:
            raise RuntimeError(f"the invocation answered {answer.status_code}: {answer.text[:200]}")

    return {"publish + delivery": publish_and_deliver, "state save": save, "state get": get, "invocation": invoke}


def cost_per_operation(groups: dict[str, int], ops: dict[str, Callable[[], None]], count: int,
                       idle_s: float = 5.0) -> dict[str, dict[str, float]]:
    """CPU ms each sidecar spends per call of each operation, net of its own idle rate."""
    before = process_cost.sample(groups)
    time.sleep(idle_s)
    after = process_cost.sample(groups)
    idle = {name: spent / (after.at - before.at) for name, spent in process_cost.delta(before, after).items()}
    results: dict[str, dict[str, float]] = {}
    for name, op in ops.items():
        before = process_cost.sample(groups)
        for _ in range(count):
            op()
        after = process_cost.sample(groups)
        window = after.at - before.at
        results[name] = {sidecar: round(max(0.0, spent - idle[sidecar] * window) * 1000 / count, 3)
                         for sidecar, spent in process_cost.delta(before, after).items()}
    results["idle_percent_of_core"] = {name: round(rate * 100, 2) for name, rate in idle.items()}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    results: dict[str, Any] = {"bench": "publish_latency", "topic": TOPIC, "messages": args.messages,
                               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="latency-bench-") as tmp:
        broker = start_tansu(Path(tmp) / "broker")
        try:
            ensure_topics(broker.bootstrap, topics_to_create(load_manifests(catalog.MANIFESTS_DIR)))
            results["raw_fetch_wait_sidecar"] = raw_floor(broker.bootstrap, args.messages, FETCH_MAX_WAIT_MS)
            results["raw_fetch_wait_500ms"] = raw_floor(broker.bootstrap, args.messages, 500)
            results["fetch_max_wait_ms"] = FETCH_MAX_WAIT_MS
            if catalog.sidecar_present():
                results["sidecar"] = sidecar_path(broker.bootstrap, Path(tmp) / "sandbox", args.messages)
            else:
                results["sidecar"] = None
                results["sidecar_missing"] = f"{catalog.SIDECAR_MODULE} is not there yet"
        finally:
            broker.stop()
    for key in ("raw_fetch_wait_sidecar", "raw_fetch_wait_500ms", "sidecar"):
        figures = results.get(key)
        if figures:
            print(f"{key:<22} p50 {figures['p50']:8.2f} ms   p99 {figures['p99']:8.2f} ms   (n={figures['n']})")
    if results["sidecar"]:
        costs = results["sidecar"]["cpu_ms_per_operation"]
        print(f"sidecar CPU per operation, ms (net of idle; daprd publishes {DAPRD_CPU_MS_PER_REQUEST} ms per "
              "invocation), load average", process_cost.load_average())
        for op, figures in costs.items():
            print(f"  {op:<20} " + "  ".join(f"{name} {value}" for name, value in figures.items()))
        results["daprd_cpu_ms_per_request"] = DAPRD_CPU_MS_PER_REQUEST
        for floor in ("raw_fetch_wait_sidecar", "raw_fetch_wait_500ms"):
            ratio = {q: round(results["sidecar"][q] / results[floor][q], 2) for q in ("p50", "p99")}
            results[f"ratio_vs_{floor}"] = ratio
            print(f"sidecar / {floor}: p50 x{ratio['p50']}, p99 x{ratio['p99']}")
    else:
        print(f"sidecar path not measured: {results['sidecar_missing']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0 if results["sidecar"] else 2


if __name__ == "__main__":
    sys.exit(main())
