"""smoke-test and kafka-outage-drill executed by papermill on a real sandbox (tansu, dev sidecars, services).

The passing runs share one sandbox; the failing drill gets its own with the backend's outbox relay disabled
(RELAY_ENABLED=false), so its events never leave the outbox: it must fail, name the cell, and
`todo-console runbook run` must exit 1. The drill is kept short here (a 3 s outage at 10 writes/s); the
README's figures come from the default minute-long outage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from console.cli import main
from console.runbooks.model import CellProgress
from console.runbooks.runner import run_runbook
from console.sandbox.layout import SandboxLayout

pytestmark = [pytest.mark.slow, pytest.mark.broker]
SHORT_DRILL = {"writes_per_s": "10", "before_s": "1", "outage_s": "3", "after_s": "1"}


def test_smoke_test_passes_from_the_cli(sandbox: SandboxLayout, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["runbook", "run", "smoke-test", "-p", f"sandbox_dir={sandbox.root}", "--out", str(tmp_path)])
    done = capsys.readouterr()
    assert code == 0, done.out + done.err
    assert done.out.startswith("PASSED: smoke-test, 9 checks"), done.out
    result = json.loads(next(tmp_path.glob("smoke-test-*.json")).read_text())
    assert [c["name"] for c in result["checks"]][3:] == [
        "the worker handled the created event", "the WebSocket pushed the created update",
        "the audit log recorded the created action", "the worker handled the deleted event",
        "the WebSocket pushed the deleted update", "the audit log recorded the deleted action"]
    assert all(c["ok"] for c in result["checks"])
    seconds = {f["name"]: f["value"] for f in result["figures"]}
    assert 0 <= seconds["audit recorded the create after"] < 30
    for line in ("[3/9] connect to the system ... ok", "[8/9] see the deleted event reach the worker"):
        assert line in done.err


def test_the_drill_passes_through_a_broker_outage(sandbox: SandboxLayout, tmp_path: Path) -> None:
    events: list[CellProgress] = []
    result = run_runbook("kafka-outage-drill", {"sandbox_dir": str(sandbox.root), **SHORT_DRILL,
                                                "settle_timeout_s": "120"},
                         out_dir=tmp_path, progress=events.append)
    assert result.passed, (result.failure, [c for c in result.checks if not c.ok])
    figures: dict[str, Any] = {f.name: f.value for f in result.figures}
    assert figures["outage"] == pytest.approx(3, abs=0.5)
    assert figures["writes during the outage"] >= 10, "the API kept taking writes while the broker was frozen"
    assert figures["outbox peak"] > 0, "events waited in the outbox"
    assert figures["audit entries"] == 2 * figures["writes"], "one entry per write and topic, nothing more"
    assert {c.name for c in result.checks} >= {"the broker stopped answering for the outage",
                                               "every action reached the audit log exactly once",
                                               "the worker handled every task event", "the WebSocket pushed every update",
                                               "every service recovered on its own"}
    ran = [(e.cell.name, e.state) for e in events if e.state != "running"]
    assert ran[3] == ("write before, during and after the outage", "passed")
    assert len(ran) == events[-1].cell.total == 9
    assert "data:image/png;base64," in Path(result.html or "").read_text(), "the timeline plot is in the HTML"


def test_the_drill_fails_naming_the_cell_when_events_never_leave_the_outbox(
        relay_off_sandbox: SandboxLayout, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["runbook", "run", "kafka-outage-drill", "-p", f"sandbox_dir={relay_off_sandbox.root}",
                 "-p", "before_s=0.5", "-p", "outage_s=1", "-p", "after_s=0.5", "-p", "settle_timeout_s=3",
                 "--out", str(tmp_path)])
    done = capsys.readouterr()
    assert code == 1, done.out + done.err
    first = done.out.splitlines()[0]
    assert first == ('FAILED at cell 4/9 "write before, during and after the outage": events waited in the outbox '
                     'during the outage: the backend exported no outbox_pending_events sample after the freeze '
                     '(is its outbox relay running?) (and 4 more failed checks)'), done.out
    assert '  FAIL  every action reached the audit log exactly once: ' in done.out
    assert "[4/9] write before, during and after the outage ... FAILED" in done.err
    result = json.loads(next(tmp_path.glob("kafka-outage-drill-*.json")).read_text())
    assert result["status"] == "failed"
    assert result["failure"]["stopped_at"] == 'cell 9/9 "verdict"'
    failed = {c["name"]: c["detail"] for c in result["checks"] if not c["ok"]}
    writes = next(f["value"] for f in result["figures"] if f["name"] == "writes")
    assert failed["every action reached the audit log exactly once"].startswith(
        f"{2 * writes} of {2 * writes} entries missing, 0 duplicated")
    assert set(failed) == {"events waited in the outbox during the outage", "the outbox drained after the outage",
                           "every action reached the audit log exactly once", "the worker handled every task event",
                           "the WebSocket pushed every update"}
    notebook = nbformat.read(result["notebook"], as_version=4)
    assert notebook.cells[0].source.startswith('## FAILED at cell 4/9 "write before, during and after the outage"')
