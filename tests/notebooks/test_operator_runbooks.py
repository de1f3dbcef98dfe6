"""verify-rollout, lag-report and dlq-triage executed by papermill on the session's sandbox (tansu, the dev
sidecars, the services, its Prometheus with the cluster's alert rules).

The dead letters are real: an event of a type no consumer knows and a message that is not a CloudEvent at all
go to task-events, the worker and the audit answer DROP, and their sidecars dead-letter them to
task-events-dlq with the reason. The triage groups them by reason, plans a redrive of the unknown type (a dry
run by default: nothing is sent), then redrives it through the ledger.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console.model.kafka import OutgoingRecord
from console.runbooks.records import cell_outputs
from console.runbooks.runner import run_runbook
from console.sandbox.layout import SandboxLayout
from console.sources.dead_letters import DeadLetters
from console.sources.kafka import source_for
from console.sources.wiring import rendered_wiring
from console.target import SandboxTarget
from tests.utils.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.broker]
CONSUMERS = {"audit", "notification", "websocket", "worker"}
DROPPING = {"audit", "worker"}  # the consumers that answer DROP to both poison messages: one dead letter each
POISON_TYPE = "todo.task.exploded.v1"
DLQ = "task-events-dlq"


def test_verify_rollout_passes_on_a_healthy_sandbox(sandbox: SandboxLayout, tmp_path: Path) -> None:
    result = run_runbook("verify-rollout", {"sandbox_dir": str(sandbox.root), "watch_s": "2"}, out_dir=tmp_path)
    assert result.passed, result.failure
    checks = {c.name: c.detail for c in result.checks}
    assert set(checks) == {"every Deployment is available", "every readiness probe passes",
                           "no restart count is climbing", "no alert is firing"}
    # The sandbox's five services, each with its dev sidecar (its Prometheus is not a workload).
    assert checks["every Deployment is available"].startswith("5 Deployments, 5 replicas available")
    assert checks["every readiness probe passes"] == "5 pods, 10 containers ready"
    assert checks["no alert is firing"].endswith("none firing") or "pending" in checks["no alert is firing"]


def test_the_lag_report_judges_every_group_and_plots_the_window(sandbox: SandboxLayout, tmp_path: Path) -> None:
    result = run_runbook("lag-report", {"sandbox_dir": str(sandbox.root), "samples": "4", "interval_s": "2"},
                         out_dir=tmp_path)
    assert result.passed, result.failure
    figures: dict[str, Any] = {f.name: f.value for f in result.figures}
    assert figures["groups"] >= len(CONSUMERS)
    assert figures["sampled over"] >= 6 * 0.9
    table = next(o.text for view in cell_outputs(Path(result.notebook)) for o in view.outputs
                 if o.text.startswith("GROUP"))
    rows = {line.split()[0]: line.split()[1] for line in table.splitlines()[1:]}
    assert set(rows) >= CONSUMERS, table
    assert all(rows[g] == "OK" for g in CONSUMERS), table  # caught up, and judged over a 6 s window
    html = Path(result.html or "").read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 1, "the lag plot is in the HTML"


def _poison(sandbox: SandboxLayout) -> tuple[str, Callable[[], list[Any]]]:
    """An event of an unknown type and a non-CloudEvent on task-events; returns the event's id and a reader of
    the waiting dead letters of it."""
    event_id = f"poison-{uuid.uuid4().hex[:12]}"
    event = {"specversion": "1.0", "id": event_id, "source": "/tests/dlq-triage", "type": POISON_TYPE,
             "datacontenttype": "application/json", "subject": "task-1", "data": {"task_id": "task-1"}}
    kafka = source_for(SandboxTarget(sandbox.root))
    try:
        kafka.produce("task-events", [OutgoingRecord(json.dumps(event).encode(), b"task-1"),
                                      OutgoingRecord(b"this is not a CloudEvent", b"task-2")])
    finally:
        kafka.close()

    def waiting() -> list[Any]:
        dead = DeadLetters(source_for(SandboxTarget(sandbox.root)), rendered_wiring())
        try:
            ledger = dead.ledger()
            return [d for d in dead.browse(DLQ, limit=1000) if ledger.settled_by(d) is None]
        finally:
            dead.kafka.close()
    return event_id, waiting


def test_dlq_triage_groups_by_reason_plans_then_redrives_the_selection(sandbox: SandboxLayout,
                                                                         tmp_path: Path) -> None:
    event_id, waiting = _poison(sandbox)

    def all_dead_lettered() -> bool:
        found = waiting()
        return all({d.app_id for d in found if wanted(d)} == DROPPING
                   for wanted in (lambda d: d.event_id == event_id, lambda d: d.cloudevent is None))
    # Each dropping consumer's sidecar dead-letters on its own time: the plan counts them all only once all are in.
    wait_until(all_dead_lettered, 60, 0.5, "both poison messages in task-events-dlq from the worker and the audit")
    poisoned = [d for d in waiting() if d.event_id == event_id]
    params = {"sandbox_dir": str(sandbox.root), "dlq": DLQ, "event_type": POISON_TYPE}

    planned = run_runbook("dlq-triage", params, out_dir=tmp_path)  # dry_run is the default
    assert planned.passed, planned.failure
    checks = {c.name: c.detail for c in planned.checks}
    assert checks["the selection can be redriven"] == f"{len(poisoned)} dead letters to redrive"
    assert "every selected dead letter was redriven" not in checks
    assert len([d for d in waiting() if d.event_id == event_id]) == len(poisoned), "a dry run sends nothing"
    printed = "\n".join(o.text for view in cell_outputs(Path(planned.notebook)) for o in view.outputs)
    assert "dry run: nothing was redriven" in printed
    assert "DROP status returned from app" in printed, "the reason group names why they failed"
    assert "(not a CloudEvent)" in printed, "the message that is no CloudEvent has a group of its own"

    redriven = run_runbook("dlq-triage", {**params, "dry_run": "false"}, out_dir=tmp_path)
    assert redriven.passed, redriven.failure
    checks = {c.name: c.detail for c in redriven.checks}
    assert checks["every selected dead letter was redriven"] == f"{len(poisoned)} back on their original topics"
    assert not [d for d in waiting() if d.event_id == event_id and d.redrive_count == 0], \
        "the ledger settled every dead letter of the event"
