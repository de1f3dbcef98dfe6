"""Fixtures for the observability tests: one real sandbox with its Prometheus, shared by the package.

The sandbox is the real one (`control.plan_sandbox`: tansu, the dev sidecars, the services) with the
Prometheus it plans when the binary is there. Through the same `monitoring.write_config` the sandbox uses,
the tests change three things: scrapes and rule evaluation every second instead of five; every rule's `for`
cut to 2 s (TodoScrapeTargetDown waits 5 minutes in the manifest), the rules' expressions, labels and
annotations staying the manifest's; and the worker's and notification's sidecars get a metrics endpoint, a
stand-in serving what daprd's serves (the dev sidecar has none), so the Dapr queries run against real
scraped series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from console.sandbox import control, monitoring
from console.sandbox.layout import SandboxLayout
from console.sandbox.secrets import JWT_SECRET, dev_token, read_secrets
from tests.console.sandbox.conftest import require_tansu, start_sandbox, write_manifests
from tests.utils.required import missing

TEST_FOR = "2s"
DAPRD_METRICS = """\
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds {started}
# HELP dapr_component_pubsub_ingress_count The number of incoming messages arriving from the pub/sub component.
# TYPE dapr_component_pubsub_ingress_count counter
dapr_component_pubsub_ingress_count{{app_id="{app}",component="kafka-pubsub",namespace="todo-app",\
process_status="success",status="success",topic="{topic}"}} {success}
dapr_component_pubsub_ingress_count{{app_id="{app}",component="kafka-pubsub",namespace="todo-app",\
process_status="retry",status="retry",topic="{topic}"}} 3
"""
OLD_DAPRD_AGE_S = 3600


@pytest.fixture
def fixture_manifests(tmp_path: Path) -> Path:
    return write_manifests(tmp_path / "manifests")


@dataclass(frozen=True)
class ObsSandbox:
    layout: SandboxLayout
    state: dict[str, Any]
    token: str

    @property
    def api(self) -> str:
        return str(self.state["urls"]["api"])

    @property
    def prometheus(self) -> str:
        return str(self.state["urls"][monitoring.NAME])

    def pid(self, name: str) -> int:
        return int((control.status(self.layout)["processes"][name])["pid"])


def quick_rules() -> dict[str, Any]:
    """The manifest's rules with every `for` at TEST_FOR."""
    rules = monitoring.alert_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = TEST_FOR
    return rules


@contextmanager
def daprd_metrics(app: str, topic: str, started: float) -> Iterator[str]:
    """daprd's metrics endpoint as its Prometheus exporter writes it (counters without `_total`, the labels of
    pkg/diagnostics/component_monitoring.go, Go's process collector): deliveries to `app` keep succeeding,
    4 per scrape, after 3 retries (a flat counter: `rate()` 0, so TodoEventDeliveryFailing stays quiet)."""
    scrapes = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            scrapes["n"] += 1
            body = DAPRD_METRICS.format(app=app, topic=topic, success=4 * scrapes["n"], started=started).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="package")
def obs_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsSandbox]:
    require_tansu()
    if monitoring.prometheus_binary() is None:
        missing("prometheus not found: apt-get install -y prometheus")
    layout = SandboxLayout(tmp_path_factory.mktemp("obs") / "sandbox")
    plan = control.plan_sandbox(layout, port_base=0)
    # The worker's daprd starts with the sandbox; the notification's was started an hour ago and is seen by
    # Prometheus for the first time, as after a Prometheus restart: its old retries are not retries now.
    with daprd_metrics("worker", "task-events", time.time()) as worker, \
            daprd_metrics("notification", "reminders", time.time() - OLD_DAPRD_AGE_S) as notification:
        urls = {"worker-dapr": worker, "notification-dapr": notification}
        scraped = [replace(p, metrics_url=urls[p.name]) if p.name in urls else p for p in plan.processes]
        monitoring.write_config(monitoring.config_dir(layout), scraped, interval_s=1.0, rules=quick_rules())
        plan.ready_timeout_s = 120
        state = start_sandbox(layout, plan, timeout_s=125)
        secret = read_secrets(layout.secrets)[JWT_SECRET[0]][JWT_SECRET[1]]
        try:
            yield ObsSandbox(layout, state, dev_token(secret))
        finally:
            control.down(layout)
