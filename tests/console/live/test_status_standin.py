"""`todo-console status` end to end against the stand-in cluster (through the official client), with the other
sources down (nothing listening) or up (tansu, a real Prometheus with the platform's alert rules, the Loki
stand-in): the 3 a.m. scenarios each give their finding and exit 1; a healthy cluster with every source up
exits 0; a source down is a warning (exit 1); the API server down is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console import cli
from console.sandbox import monitoring
from console.sandbox.broker import start_tansu
from console.sandbox.manifests import load_manifests, topics_to_create
from console.sandbox.ports import free_port
from console.sandbox.topics import ensure_topics
from tests.console.observability.loki_standin import running_loki
from tests.console.sandbox.conftest import require_tansu
from tests.utils.kube_apiserver import StandInCluster
from tests.utils.required import missing
from tests.utils.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
QUICK = ("--samples", "1")  # no lag verdict (that needs a window of samples), no waiting


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.out)
        return document

    def findings(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(f["area"], f["subject"]): f for f in self.json()["findings"]}


@pytest.fixture
def status(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """status(*args): `todo-console status` on the stand-in; Kafka, Prometheus and Loki down unless a test sets
    their TODO_CONSOLE_* address."""
    monkeypatch.setenv("TODO_CONSOLE_REQUEST_TIMEOUT_S", "2")
    for name in ("KAFKA_BOOTSTRAP", "PROMETHEUS_URL", "LOKI_URL"):
        address = f"127.0.0.1:{free_port()}"
        monkeypatch.setenv(f"TODO_CONSOLE_{name}", address if name == "KAFKA_BOOTSTRAP" else f"http://{address}")

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = cli.main(["status", *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)
    return run


def test_a_healthy_cluster_with_every_source_down_but_the_api_warns_once_per_source(status: Any) -> None:
    run = status(*QUICK)
    assert run.code == 1, run.err
    lines = run.out.splitlines()
    assert lines[0] == "context (current) (todo-app): 0 errors, 3 warnings"
    assert lines[2].split() == ["SERVICE", "STATE", "READY", "AVAILABLE", "RESTARTS", "VERSION"]
    assert lines[3].split() == ["audit", "complete", "1/1", "1", "0", "0.1.0"]
    sources = {line.split()[0]: line for line in lines if line.startswith(("kafka ", "prometheus ", "loki "))}
    assert set(sources) == {"kafka", "prometheus", "loki"}
    assert "connection refused" in sources["prometheus"]
    warnings = [line for line in lines if line.startswith("WARN ")]
    assert [w.split()[1].split("/")[0] for w in warnings] == ["sources"] * 3
    assert {w.split()[1] for w in warnings} == {"sources/kafka", "sources/prometheus", "sources/loki"}
    assert "dead letters  unknown (Kafka could not be read)" in run.out

    document = status(*QUICK, "--json").json()
    assert (document["kind"], document["version"], document["healthy"], document["worst"]) == (
        "status", 1, False, "warn")
    assert {s["name"]: s["state"] for s in document["sources"]} == {
        "workloads": "ok", "wiring": "ok", "lag": "down", "dead_letters": "down", "alerts": "down", "logs": "down"}
    assert [p["area"] for p in document["platform"]] == ["kafka", "dapr", "keda", "autoscaling", "certificates"]
    assert all(p["ok"] for p in document["platform"])
    assert (document["rollouts"], document["lag"], document["dead_letters"], document["alerts"]) == ([], None, None,
                                                                                                  None)


def test_a_crash_loop_is_an_error_with_the_command_to_run_next(status: Any, cluster: StandInCluster) -> None:
    cluster.crash_loop("backend")
    run = status(*QUICK, "--json")
    assert run.code == 1
    found = run.findings()
    pods = found[("pods", "backend")]
    assert pods["severity"] == "error"
    assert "CrashLoopBackOff" in pods["message"]
    assert pods["hint"].startswith("todo-console pods backend-")
    assert pods["since"] is not None
    assert found[("rollouts", "backend")]["severity"] == "error"  # rolled out, replicas lost since: degraded
    assert run.json()["findings"][0]["severity"] == "error"  # worst first
    (backend,) = [s for s in run.json()["services"] if s["name"] == "backend"]
    assert (backend["state"], backend["ready"], backend["problem"]) == ("degraded", 0, True)
    assert backend["restarts"] >= 1


def test_a_stalled_rollout_then_its_deadline(status: Any, cluster: StandInCluster) -> None:
    cluster.stall_next_rollout("worker", "ImagePullBackOff")
    assert cli.main(["rollout", "restart", "worker", "--yes"]) == 0
    run = wait_until(lambda: (r := status(*QUICK, "--json")) and ("rollouts", "worker") in r.findings() and r,
                     timeout=60, interval=0.5, message="the stalled rollout's finding")
    stalled = run.findings()[("rollouts", "worker")]
    assert stalled["severity"] == "error"
    assert stalled["message"].startswith('rollout of "worker" stalled: new pods cannot start (worker-')
    assert "ImagePullBackOff" in stalled["message"]
    assert [r["name"] for r in run.json()["rollouts"]] == ["worker"]  # in progress
    assert run.code == 1

    cluster.advance(601)  # ten minutes without progress
    run = wait_until(lambda: (r := status(*QUICK, "--json")) and "exceeded its progress deadline" in r.findings().get(
        ("rollouts", "worker"), {}).get("message", "") and r, timeout=60, interval=0.5, message="the deadline")
    failed = run.findings()[("rollouts", "worker")]
    assert (failed["severity"], failed["hint"]) == (
        "error", "todo-console rollout history worker; todo-console rollout undo worker")
    readable = status(*QUICK)
    assert 'ERROR  rollouts/worker since ' in readable.out
    assert "       next: todo-console rollout history worker; todo-console rollout undo worker" in readable.out


def test_an_expiring_certificate_is_a_warning_since_its_renewal_was_due(status: Any, cluster: StandInCluster) -> None:
    cluster.certificate_expiring("todo-tls", 4.5)
    run = wait_until(lambda: (r := status(*QUICK, "--json")) and ("resources", "Certificate/todo-tls") in r.findings()
                     and r, timeout=30, interval=0.5, message="the certificate's finding")
    cert = run.findings()[("resources", "Certificate/todo-tls")]
    assert cert["severity"] == "warn"
    assert cert["message"].startswith("Expiring: expires in 4.5 days; renewal: Failed")
    assert cert["since"] < run.json()["generated_at"] - 19 * 86400  # renewal was due 20 days ago
    assert cert["hint"] == "todo-console resources --kind certificate"
    (line,) = [p for p in run.json()["platform"] if p["area"] == "certificates"]
    assert line["ok"] is False
    assert "todo-tls expires in 4.5 days" in line["summary"]
    assert run.code == 1


def test_the_api_server_down_is_one_line_and_exit_2(status: Any, cluster: StandInCluster) -> None:
    cluster.server.stop()
    run = status(*QUICK)
    assert (run.code, run.out) == (2, "")
    assert run.err.startswith(f"todo-console status: Kubernetes API at {cluster.server.url}: ")
    assert run.err.count("\n") == 1


def test_a_sandbox_that_is_not_running_is_one_line_and_exit_2(status: Any, tmp_path: Path) -> None:
    run = status("--sandbox", str(tmp_path / "nothing-here"), *QUICK)
    assert (run.code, run.out) == (2, "")
    assert run.err == (f"todo-console status: sandbox at {tmp_path / 'nothing-here'}: not running (never started): "
                       "`todo-console sandbox up`\n")


def test_bad_input_is_refused(status: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert status("--samples", "0").err == "todo-console status: --samples must be at least 1 and --interval above 0\n"
    monkeypatch.setenv("TODO_CONSOLE_REQUEST_TIMEOUT_S", "soon")
    run = status(*QUICK)
    assert (run.code, run.err) == (2, "todo-console status: TODO_CONSOLE_REQUEST_TIMEOUT_S='soon': give seconds above "
                                      "0, at most 120\n")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus with the platform's alert rules and nothing to scrape: every rule evaluates, none fires."""
    binary = monitoring.prometheus_binary()
    if binary is None:
        missing("prometheus not found: apt-get install -y prometheus")
    root = tmp_path / "prometheus"
    config = monitoring.write_config(root, [], interval_s=1.0)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(root / "prometheus.log", "wb") as log:
        process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _answers(f"{url}/api/v1/rules"), timeout=60, interval=0.2, message="Prometheus")
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback URL the test made
            groups = json.load(response)["data"]["groups"]
            return bool(groups) and all(r.get("lastEvaluation", "").startswith("2") and r.get("health") == "ok"
                                        for g in groups for r in g["rules"])
    except OSError:
        return False


@pytest.mark.broker
def test_a_healthy_cluster_with_every_source_up_is_exit_0(status: Any, prometheus: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    require_tansu()
    broker = start_tansu(tmp_path / "broker")
    try:
        ensure_topics(broker.bootstrap, topics_to_create(load_manifests(REPO / "kustomize" / "base")))
        with running_loki() as (loki, _):
            monkeypatch.setenv("TODO_CONSOLE_KAFKA_BOOTSTRAP", broker.bootstrap)
            monkeypatch.setenv("TODO_CONSOLE_PROMETHEUS_URL", prometheus)
            monkeypatch.setenv("TODO_CONSOLE_LOKI_URL", loki)
            run = status(*QUICK)
            document = status(*QUICK, "--json").json()
    finally:
        broker.stop()
    assert run.code == 0, run.out
    assert run.out.splitlines()[0] == "context (current) (todo-app): healthy"
    assert "dead letters  none waiting (0 pending in 3 DLQs)" in run.out
    assert "alerts        nothing firing (8 rules)" in run.out
    assert "worst lag     every group caught up (4 groups: 0 ERR, 0 WARN; 1 sample)" in run.out  # the apps
    assert (document["healthy"], document["findings"]) == (True, [])
    assert {s["state"] for s in document["sources"]} == {"ok"}
    assert {s["source"] for s in document["sources"]} == {"Kubernetes API", "kafka", "prometheus", "loki"}
    assert document["alerts"] == {"rules": 8, "firing": [], "pending": 0}
    assert (document["dead_letters"]["dlqs"], document["dead_letters"]["waiting"]) == (3, 0)
    assert (document["lag"]["groups"], document["lag"]["group"]) == (4, None)
