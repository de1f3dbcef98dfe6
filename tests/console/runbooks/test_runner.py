"""The runner executes notebooks with papermill in a real kernel and keeps a record naming what failed."""

from __future__ import annotations

import json
import stat
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest

from console.runbooks import records
from console.runbooks.kernel import Cancellation
from console.runbooks.model import CellProgress, ParameterError
from console.runbooks.runner import _failure, _new_path, run_runbook

from .conftest import write_notebook

PARAMETERS = """
    fail: bool = False  # make the second check fail
    count: int = 2  # [1..5] how many figures
"""
MEASURE = """
    # measure things
    import os, sys
    from console.runbooks.kit import Verdict
    verdict = Verdict("check-things")
    verdict.figure("python", sys.executable)
    verdict.figure("cwd", os.getcwd())
    for i in range(count):
        verdict.figure(f"f{i}", i * 1.5, "s")
    verdict.check("first", True, "fine")
"""
CHECK = """
    # check the second thing
    print("checking")
    verdict.check("second", not fail, "fail was set" if fail else "fine")
"""
VERDICT = """
    # verdict
    verdict.finish()
"""


def test_a_failed_check_names_its_cell_and_the_record_says_so_everywhere(books: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A user-wide `python3` kernel spec pointing at another interpreter must not be the one that runs.
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({"argv": ["/nonexistent/python", "-m", "ipykernel_launcher",
                                                              "-f", "{connection_file}"], "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    write_notebook(books, "check-things", PARAMETERS, MEASURE, CHECK, VERDICT)
    events: list[CellProgress] = []
    printed: list[str] = []
    out = tmp_path / "runs"

    result = run_runbook("check-things", {"fail": "true", "count": 3}, out_dir=out, progress=events.append,
                         output=printed.append)

    assert result.status == "failed"
    assert result.failure is not None
    assert result.failure.cell == 'cell 4/5 "check the second thing"'
    assert result.failure.reason == "second: fail was set"
    assert result.failure.stopped_at == 'cell 5/5 "verdict"'
    assert [(c.name, c.ok, c.cell) for c in result.checks] == [
        ("first", True, 'cell 3/5 "measure things"'), ("second", False, 'cell 4/5 "check the second thing"')]
    figures = {f.name: f.value for f in result.figures}
    assert figures["python"] == sys.executable, "the kernel runs this interpreter"
    assert figures["cwd"] == str(books), "the kernel works in the notebooks' folder"
    assert [figures[f"f{i}"] for i in range(3)] == [0.0, 1.5, 3.0]
    assert [(c.name, c.state) for c in result.cells] == [
        ("parameters", "passed"), ("injected parameters", "passed"), ("measure things", "passed"),
        ("check the second thing", "failed"), ("verdict", "failed")]
    assert result.parameters == {"fail": True, "count": 3}

    # progress: each code cell started then ended, in order, the failed check named as it happened
    assert [(e.cell.index, e.state) for e in events] == [
        (i, s) for i in range(1, 6) for s in ("running", "passed" if i < 4 else "failed")]
    assert all(e.cell.total == 5 for e in events)
    assert events[7].error == "second: fail was set"
    assert events[9].error is not None
    assert events[9].error.startswith("RunbookFailed: 1 of 2 checks failed")
    assert "checking" in "".join(printed)

    # the record: stamped names, never overwritten, read-only; the header first, a marker before the cell
    notebook_path = Path(result.notebook)
    assert notebook_path.parent == out
    assert records.STAMP.match(notebook_path.stem)
    for path in (notebook_path, Path(result.html or ""), Path(result.result)):
        assert path.is_file()
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    executed = nbformat.read(notebook_path, as_version=4)
    assert executed.cells[0].source.startswith('## FAILED at cell 4/5 "check the second thing"\n\nsecond: fail was set')
    marker = next(i for i, c in enumerate(executed.cells) if "The run failed here" in c.source)
    assert executed.cells[marker + 1].source.startswith("# check the second thing")
    assert not [c for c in executed.cells if "papermill-error-cell-tag" in c.metadata.get("tags", [])]
    assert records.read_result(Path(result.result)) == result
    assert "FAILED at cell 4/5" in Path(result.html or "").read_text()

    # read back as the dashboard would: the outputs as text, the last result
    views = records.cell_outputs(notebook_path)
    assert [v.cell.name for v in views][-2:] == ["check the second thing", "verdict"]
    assert any(o.kind == "stream" and "checking" in o.text for o in views[3].outputs)
    assert any(o.kind == "error" and "RunbookFailed" in o.text for o in views[4].outputs)
    assert records.last_result(out, "check-things") == result


def test_a_cell_that_raises_is_the_failed_cell_and_the_rest_never_runs(books: Path, tmp_path: Path) -> None:
    write_notebook(books, "raise-things", PARAMETERS, MEASURE, "# connect\nraise ConnectionError('nobody home')",
                   CHECK, VERDICT)
    result = run_runbook("raise-things", out_dir=tmp_path)
    assert result.failure is not None
    assert (result.failure.cell, result.failure.reason) == ('cell 4/6 "connect"', "ConnectionError: nobody home")
    assert [c.state for c in result.cells] == ["passed", "passed", "passed", "failed", "skipped", "skipped"]
    assert [c.name for c in result.checks] == ["first"]


def test_a_bad_parameter_is_refused_before_anything_runs_or_is_written(books: Path, tmp_path: Path) -> None:
    write_notebook(books, "check-things", PARAMETERS, MEASURE, VERDICT)
    events: list[CellProgress] = []
    with pytest.raises(ParameterError, match="parameter count: 9 is above the maximum of 5"):
        run_runbook("check-things", {"count": 9}, out_dir=tmp_path / "runs", progress=events.append)
    assert not (tmp_path / "runs").exists()
    assert events == []


def test_failure_without_a_failed_cell_says_why() -> None:
    reading = records.Reading()
    assert _failure(reading, None) is not None
    assert _failure(reading, None).reason.startswith("the runbook stated no verdict")  # type: ignore[union-attr]
    dead = _failure(reading, RuntimeError("Kernel died before replying to kernel_info"))
    assert dead is not None
    assert dead.cell is None
    assert dead.reason.startswith("RuntimeError: Kernel died")
    reading.verdict = {"passed": True, "failed": []}
    assert _failure(reading, None) is None


def test_two_runs_in_one_second_never_share_a_record(tmp_path: Path) -> None:
    started = datetime(2026, 11, 30, 6, 15, 36, tzinfo=UTC)
    first = _new_path(tmp_path, "smoke-test", started)
    assert first.name == "smoke-test-20261130T061536Z.ipynb"
    first.touch()
    second = _new_path(tmp_path, "smoke-test", started)
    assert second.name == "smoke-test-20261130T061536Z-2.ipynb"
    assert records.STAMP.match(second.stem)["name"] == "smoke-test"  # type: ignore[index]


def test_a_cancelled_run_interrupts_the_running_cell_and_starts_no_other(books: Path, tmp_path: Path) -> None:
    write_notebook(books, "wait-things", PARAMETERS, MEASURE,
                   "# wait a long time\nimport time\ntry:\n    time.sleep(120)\nfinally:\n    print('cleaned up')",
                   CHECK, VERDICT)
    cancellation = Cancellation()

    def progress(event: CellProgress) -> None:
        if event.state == "running" and event.cell.name == "wait a long time":
            threading.Timer(0.5, cancellation.cancel).start()

    began = time.monotonic()
    result = run_runbook("wait-things", out_dir=tmp_path, progress=progress, cancellation=cancellation)
    assert time.monotonic() - began < 60
    assert result.failure is not None
    assert result.failure.cell == 'cell 4/6 "wait a long time"'
    assert result.failure.reason.startswith("cancelled by the operator (KeyboardInterrupt")
    assert [c.state for c in result.cells][3:] == ["failed", "skipped", "skipped"]
    waited = records.cell_outputs(Path(result.notebook))[3]
    assert any("cleaned up" in o.text for o in waited.outputs), "the cell's finally ran"


def test_a_run_cancelled_before_its_first_cell_runs_none(books: Path, tmp_path: Path) -> None:
    write_notebook(books, "check-things", PARAMETERS, MEASURE, VERDICT)
    cancellation = Cancellation()
    cancellation.cancel()
    result = run_runbook("check-things", out_dir=tmp_path, cancellation=cancellation)
    assert result.failure is not None
    assert result.failure.reason == "cancelled by the operator (RunCancelled: cancelled before cell 1/4)"
    assert {c.state for c in result.cells} == {"skipped"}
