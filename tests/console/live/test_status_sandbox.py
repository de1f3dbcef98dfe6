"""`todo-console status` on a real sandbox (supervisor, tansu, the dev sidecars, the services, and Prometheus when
its binary is installed), one for the module: a fresh sandbox is healthy with a lag verdict from a window of
samples; an event the worker drops becomes a dead letter waiting, a warning with the command to run next."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaProducer

from console import cli
from console.sandbox import control, monitoring
from console.sandbox.layout import SandboxLayout
from tests.console.sandbox.conftest import running_sandbox
from tests.utils.events import snapshot, task_event
from tests.utils.waiting import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]
SERVICES = ["audit", "backend", "notification", "websocket", "worker"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxLayout]:
    with running_sandbox(tmp_path_factory.mktemp("status") / "sandbox") as layout:
        yield layout


def status(sandbox: SandboxLayout, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["status", "--sandbox", str(sandbox.root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_fresh_sandbox_is_healthy_with_a_lag_verdict(sandbox: SandboxLayout,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = status(sandbox, capsys)  # the default: 3 lag samples, 2.5 s apart
    assert (code, err) == (0, ""), out
    lines = out.splitlines()
    assert lines[0] == f"sandbox {sandbox.root}: healthy"
    assert [line.split()[0] for line in lines[3:3 + len(SERVICES)]] == SERVICES
    assert all(line.split()[1:3] == ["complete", "1/1"] for line in lines[3:3 + len(SERVICES)])
    assert "worst lag     every group caught up (4 groups: 0 ERR, 0 WARN; 3 samples)" in out

    code, out, _ = status(sandbox, capsys, "--samples", "1", "--json")
    document: dict[str, Any] = json.loads(out)
    assert (code, document["kind"], document["healthy"]) == (0, "status", True)
    sources = {s["name"]: (s["source"], s["state"]) for s in document["sources"]}
    prometheus = ("prometheus", "ok") if monitoring.prometheus_binary() else ("prometheus", "absent")
    assert sources == {"workloads": ("sandbox", "ok"), "wiring": ("kustomize", "ok"), "lag": ("kafka", "ok"),
                       "dead_letters": ("kafka", "ok"), "alerts": prometheus, "logs": ("sandbox logs", "ok")}
    assert [p["area"] for p in document["platform"]] == ["kafka", "dapr"]
    assert all(p["ok"] for p in document["platform"])
    assert all(f["severity"] == "info" for f in document["findings"])


def test_a_dropped_event_is_a_dead_letter_waiting_with_the_command_to_run_next(
        sandbox: SandboxLayout, capsys: pytest.CaptureFixture[str]) -> None:
    """A completed recurring task without a due date: the worker drops it, its sidecar dead-letters it."""
    task = snapshot(rule="FREQ=DAILY", due_at=None, status="completed")
    event = task_event("completed", task)
    producer = KafkaProducer(bootstrap_servers=control.status(sandbox)["broker"]["bootstrap"])
    producer.send("task-events", key=task.id.encode(), value=event.model_dump_json().encode())
    producer.flush()
    producer.close()

    def dead_letter_finding() -> dict[str, Any] | None:
        code, out, _ = status(sandbox, capsys, "--samples", "1", "--json")
        found = [f for f in json.loads(out)["findings"] if f["area"] == "dlq"]
        return {"code": code, **found[0]} if found else None

    finding = wait_until(dead_letter_finding, timeout=60, interval=1.0, message="the dead letter's finding")
    assert (finding["code"], finding["severity"], finding["subject"]) == (1, "warn", "task-events-dlq")
    assert finding["message"].startswith("1 dead letter waiting (from task-events; apps audit, worker)")
    assert finding["hint"] == "todo-console dlq show task-events-dlq"
    code, out, _ = status(sandbox, capsys, "--samples", "1")
    assert code == 1
    assert "dead letters  1 waiting (task-events-dlq 1)" in out
    assert "WARN   dlq/task-events-dlq since " in out
    assert "       next: todo-console dlq show task-events-dlq" in out
    assert cli.main(["dlq", "show", "task-events-dlq", "--json", "--sandbox", str(sandbox.root)]) == 0
    (message,) = json.loads(capsys.readouterr().out)["messages"]
    assert (message["event_id"], message["app_id"]) == (event.id, "worker")
    assert message["reason"].startswith("dropped")

