"""`todo-console runbook list | show | run`: exit codes, refusals before anything runs, the failure on top."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main

from .conftest import write_notebook

PARAMETERS = """
    target: str = "sandbox"  # {sandbox, cluster} where it runs
    fail: bool = False  # make the check fail
"""
CELLS = (
    "# measure\nfrom console.runbooks.kit import Verdict\nverdict = Verdict('check-things')\nverdict.figure('n', 7, 'events')",
    "# check the thing\nverdict.check('the thing holds', not fail, 'it broke' if fail else 'yes')",
    "# verdict\nverdict.finish()",
)


@pytest.fixture
def book(books: Path) -> Path:
    return write_notebook(books, "check-things", PARAMETERS, *CELLS, title="Check things")


def test_bad_parameters_are_refused_with_exit_2_before_anything_runs(book: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    for args, message in (
        (["-p", "target=staging"], "parameter target: 'staging' is not one of {sandbox, cluster}"),
        (["-p", "fail=perhaps"], "parameter fail: expected true or false, got 'perhaps'"),
        (["-p", "targt=cluster"], "parameter targt: check-things has no such parameter (did you mean target?)"),
        (["-p", "target"], "-p expects NAME=VALUE, got 'target'"),
    ):
        assert main(["runbook", "run", "check-things", "--out", str(runs), *args]) == 2
        out, err = capsys.readouterr()
        assert err == f"todo-console runbook: check-things: {message}\n"
        assert out == ""
    params = tmp_path / "params.yaml"
    params.write_text("fail: sometimes\n")
    assert main(["runbook", "run", "check-things", "--out", str(runs), "-f", str(params)]) == 2
    assert "parameter fail: expected true or false" in capsys.readouterr().err
    assert not runs.exists(), "nothing was written"


def test_a_read_only_console_runs_no_runbook(book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    refused = "todo-console runbook: runbook run check-things: refused, the console is read-only"
    assert main(["runbook", "run", "check-things", "--out", str(runs), "--readonly"]) == 2
    assert capsys.readouterr().err.startswith(refused)
    monkeypatch.setenv("TODO_CONSOLE_READONLY", "1")
    assert main(["runbook", "run", "check-things", "--out", str(runs), "-p", "target=cluster"]) == 2
    assert capsys.readouterr().err.startswith(refused)
    assert not runs.exists(), "nothing ran"
    assert main(["runbook", "show", "check-things", "--out", str(runs)]) == 0, "reading is not refused"


def test_an_unknown_runbook_lists_the_known_ones(book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "show", "check-thing"]) == 2
    assert "no runbook 'check-thing'" in capsys.readouterr().err
    assert main(["runbook", "run", "../etc/passwd"]) == 2
    assert "(known: check-things)" in capsys.readouterr().err


def test_show_describes_the_parameters(book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "show", "check-things", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("check-things: Check things\nWhat it is for, in one paragraph.\n")
    assert "target     str   'sandbox'  {sandbox, cluster}  where it runs" in out
    assert out.rstrip().endswith("last run  never run")


def test_a_failed_run_exits_1_with_the_failed_cell_first_and_list_shows_it(
        book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    assert main(["runbook", "run", "check-things", "--out", str(runs), "-p", "fail=yes"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == 'FAILED at cell 4/5 "check the thing": the thing holds: it broke'
    assert lines[1] == '  (the run stopped at cell 5/5 "verdict")'
    assert "  FAIL  the thing holds: it broke" in lines
    assert "  n  7 events" in lines
    assert '[4/5] check the thing ... FAILED' in err
    assert main(["runbook", "list", "--out", str(runs)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["RUNBOOK", "PARAMETERS", "LAST", "RUN"]
    assert listing[1].startswith("check-things  target, fail  failed ")
    assert listing[1].endswith('at cell 4/5 "check the thing"')
    assert main(["runbook", "list", "--json", "--out", str(runs)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["kind"] == "runbooks"
    entry = document["runbooks"][0]
    assert entry["parameters"][0] == {"name": "target", "type": "str", "default": "sandbox", "help": "where it runs",
                                      "choices": ["sandbox", "cluster"], "minimum": None, "maximum": None}
    assert entry["last_result"]["failure"]["cell"] == 'cell 4/5 "check the thing"'
