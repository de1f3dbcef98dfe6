"""`logs`, `alerts` and `events` from the command line: the cluster path through Loki, and every way they
refuse or fail in one line with exit code 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console import cli
from console.sandbox.layout import REPO_ROOT
from console.sandbox.plan import write_json_atomic
from console.sandbox.ports import free_port

from .loki_standin import running_loki

NS = 1_000_000_000


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cluster target: the logs come from TODO_CONSOLE_LOKI_URL, whatever the kube context says."""
    monkeypatch.setenv("TODO_SANDBOX_DIR", str(tmp_path / "no-sandbox"))
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\n")
    return config


def sandbox_state(root: Path, urls: dict[str, str]) -> Path:
    """A sandbox directory as the supervisor leaves it, for the console to find (or not find) Prometheus."""
    root.mkdir(parents=True)
    write_json_atomic(root / "state.json", {"phase": "ready", "urls": urls, "processes": {}})
    return root


def test_logs_of_a_cluster_come_from_loki(capsys: pytest.CaptureFixture[str], kubeconfig: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with running_loki() as (url, loki):
        monkeypatch.setenv("TODO_CONSOLE_LOKI_URL", url)
        now = time.time()
        labels = {"job": "fluent-bit", "namespace": "shop", "pod": "worker-1", "container": "app", "app": "worker"}
        loki.push(labels, int((now - 30) * NS), json.dumps(
            {"level": "warning", "service": "worker", "msg": "event dropped", "event_id": "e-1",
             "correlation_id": "c-1", "error": "no due date", "traceparent": "00-ab-cd-01"}))
        loki.push(labels, int((now - 7200) * NS), json.dumps({"level": "info", "msg": "too old"}))

        code, out, err = run(capsys, "logs", "worker", "--kubeconfig", str(kubeconfig), "-N", "shop")
        assert (code, err) == (0, "")
        [line] = out.splitlines()
        assert line.split()[1:4] == ["worker", "warning", "event"]
        assert line.endswith("event dropped  error=\"no due date\" event_id=e-1 correlation_id=c-1")
        assert loki.requests[-1]["query"] == '{namespace="shop", app="worker"}'
        assert int(loki.requests[-1]["start"]) == pytest.approx((now - 900) * NS, rel=1e-6)  # --since 15m

        code, out, _ = run(capsys, "logs", "--event-id", "e-1", "--since", "3h", "--json", "--kubeconfig",
                           str(kubeconfig), "-N", "shop")
        assert code == 0
        [document] = [json.loads(line) for line in out.splitlines()]
        assert set(document) == {"ts", "time", "source", "service", "level", "msg", "correlation_id", "event_id",
                                 "fields", "labels"}
        assert (document["source"], document["event_id"], document["fields"]["error"]) == ("worker", "e-1", "no due date")
        assert document["labels"]["pod"] == "worker-1"

        code, out, err = run(capsys, "logs", "backend", "--kubeconfig", str(kubeconfig))
        assert (code, out) == (0, "")
        assert err.startswith("no log lines match in http://127.0.0.1:")


def test_loki_down_is_exit_2_and_one_line(capsys: pytest.CaptureFixture[str], kubeconfig: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("TODO_CONSOLE_LOKI_URL", url)
    code, out, err = run(capsys, "logs", "--kubeconfig", str(kubeconfig))
    assert (code, out) == (2, "")
    assert err == f"todo-console logs: loki at {url}: connection refused\n"


@pytest.mark.parametrize("command", ["alerts", "events"])
def test_prometheus_down_is_exit_2_and_one_line(capsys: pytest.CaptureFixture[str], kubeconfig: Path,
                                               monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("TODO_CONSOLE_PROMETHEUS_URL", url)
    code, out, err = run(capsys, command, "--kubeconfig", str(kubeconfig))
    assert (code, out) == (2, "")
    assert err == f"todo-console {command}: prometheus at {url}: connection refused\n"


def test_a_sandbox_without_prometheus_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = sandbox_state(tmp_path / "sb", {"api": "http://127.0.0.1:1/api"})
    code, out, err = run(capsys, "alerts", "--sandbox", str(root))
    assert (code, out) == (2, "")
    assert err.startswith(f"todo-console alerts: prometheus at sandbox {root}: this sandbox runs no Prometheus")
    code, _, err = run(capsys, "events", "--sandbox", str(tmp_path / "never-started"))
    assert code == 2
    assert err.endswith("the sandbox is not up (`todo-console sandbox up`)\n")


def test_logs_follow_prints_the_last_lines_then_new_ones(tmp_path: Path) -> None:
    """The real entry point in a subprocess: `-f` runs until interrupted."""
    root = sandbox_state(tmp_path / "sb", {})
    (root / "logs").mkdir()
    log = root / "logs" / "worker.log"
    stamp = "2024-05-01T12:00:00.000+00:00"
    log.write_text(json.dumps({"ts": stamp, "level": "info", "service": "worker", "msg": "old"}) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "logs", "worker", "--since", "2024-05-01T00:00:00Z",
                             "-f", "--json", "--sandbox", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO_ROOT)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["msg"] == "old"
        with open(log, "a") as handle:
            handle.write(json.dumps({"ts": stamp, "level": "error", "service": "worker", "msg": "new"}) + "\n")
        assert json.loads(proc.stdout.readline())["msg"] == "new"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_sandbox_logs_of_an_unknown_service(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = sandbox_state(tmp_path / "sb", {})
    (root / "logs").mkdir()
    (root / "logs" / "backend.log").write_text("")
    code, _, err = run(capsys, "logs", "nope", "--sandbox", str(root))
    assert code == 2
    assert err.startswith(f"todo-console logs: sandbox logs at {root / 'logs'}: unknown service 'nope'; known: ")


@pytest.mark.parametrize(("argv", "message"), [
    (["logs", "--limit", "0"], "--limit must be between 1 and 5000, got 0"),
    (["logs", "--since", "yesterday"], "--since 'yesterday': expected a duration ago (15m) or a time"),
    (["logs", "--since", "5m", "--until", "10m"], "--until must be later than --since"),
    (["events", "--range", "3"], "--range '3': expected a duration such as 30s, 15m, 2h or 7d"),
    (["events", "--range", "8d"], "--range 8d: at most 7d"),
    (["events", "--window", "0m"], "--window: rate window '0m': use a duration such as 30s, 2m or 1h"),
    (["events", "--topic", "no spaces"], "--topic 'no spaces': not a Kafka topic name"),
])
def test_bad_flags_are_one_line(capsys: pytest.CaptureFixture[str], kubeconfig: Path, argv: list[str],
                                message: str) -> None:
    code, out, err = run(capsys, *argv, "--kubeconfig", str(kubeconfig))
    assert (code, out) == (2, "")
    assert err.startswith(f"todo-console {argv[0]}: {message}")
