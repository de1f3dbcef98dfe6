"""Recorded runbook results for the Runbooks screen's snapshots: JSON results as `run_runbook` writes them, at
fixed moments before the recorded system's NOW, with paths that are the same in every checkout (the files
they name need not exist: the list reads only the JSON, and a result screen is handed its outputs here)."""

from __future__ import annotations

from pathlib import Path

from console.runbooks.model import CellRecord, CellRef, Check, Failure, Figure, RunResult
from console.runbooks.records import CellView, OutputView, write_result

RUNS = "/var/lib/todo/runs"  # where the recorded runs say they were kept
PREFLIGHT = 'cell 5/8 "preflight: does the tenancy allow what the plan creates?"'
NAMES = ("parameters", "injected parameters", "load the cluster spec and connect to OCI",
         "plan: what exists and what would change", "preflight: does the tenancy allow what the plan creates?",
         "apply: create and update, in dependency order, waiting for each", "check that the environment matches "
         "the spec", "verdict")


def _result(runbook: str, stamp: str, started_at: str, seconds: float, **fields: object) -> RunResult:
    base = f"{RUNS}/{runbook}-{stamp}"
    given: dict[str, object] = {"status": "passed", "parameters": {}, **fields}
    return RunResult(runbook=runbook, started_at=started_at, finished_at=started_at, seconds=seconds,
                     notebook=f"{base}.ipynb", html=f"{base}.html", result=f"{base}.json", **given)  # type: ignore[arg-type]


def failed_provision() -> RunResult:
    """provision-oke refused by a Free Tier tenancy: the preflight check fails, the verdict cell stops the run."""
    cells = [CellRecord(i, name, "passed", 0.1) for i, name in enumerate(NAMES[:4], start=1)]
    cells += [CellRecord(5, NAMES[4], "failed", 0.4), CellRecord(6, NAMES[5], "passed", 0.0),
              CellRecord(7, NAMES[6], "passed", 0.0), CellRecord(8, NAMES[7], "failed", 0.0)]
    reason = ("the tenancy allows what the plan creates: container-engine cluster-count: 1 needed, 0 allowed in "
              "eu-frankfurt-1; vcn nat-gateway-count: 1 needed, 0 allowed")
    return _result(
        "provision-oke", "20270115T074200Z", "2027-01-15T07:42:00+00:00", 6.4, status="failed",
        parameters={"cluster_spec": "", "oci_profile": "", "skip_preflight": False, "dry_run": True},
        failure=Failure(PREFLIGHT, reason, 'cell 8/8 "verdict"'),
        checks=[Check("apply can carry out the plan", True, "", 'cell 4/8 "plan: what exists and what would '
                      'change"'), Check("the tenancy allows what the plan creates", False, reason.split(": ", 1)[1],
                                        PREFLIGHT)],
        figures=[Figure("to create", 14), Figure("unchanged", 0), Figure("to blocked", 0)], cells=cells)


def failed_provision_outputs() -> tuple[CellView, ...]:
    """The executed notebook's cells as `cell_outputs` reads them: tables as text, a plot, the verdict's error."""
    def ref(index: int) -> CellRef:
        return CellRef(index, 8, NAMES[index - 1], index)
    texts: dict[int, tuple[OutputView, ...]] = {
        3: (OutputView("text", "Cluster spec\n  name         todo-oke\n  region       eu-frankfurt-1\n"
                               "  node pool    2 x VM.Standard.A1.Flex (2 OCPU, 12 GB)"),),
        4: (OutputView("text", "to create: 14"), OutputView("text", "PASS  apply can carry out the plan"),
            OutputView("image", "")),
        5: (OutputView("text", "FAIL  the tenancy allows what the plan creates: container-engine cluster-count: 1 "
                               "needed, 0 allowed"),),
        6: (OutputView("stream", "dry run: nothing was created or changed\n"),),
        8: (OutputView("error", "RunbookFailed: 1 of 2 checks failed: the tenancy allows what the plan creates"),),
    }
    return tuple(CellView(ref(i), f"# {NAMES[i - 1]}", texts.get(i, ())) for i in range(1, 9))


def write_results(runs: Path) -> None:
    """The runs folder the list reads: three runbooks run (one failed), the others never."""
    runs.mkdir(parents=True, exist_ok=True)
    passed = {"checks": [Check("the check", True)], "cells": [CellRecord(1, "parameters", "passed", 0.1)]}
    for result in (
        failed_provision(),
        _result("bootstrap-cluster", "20270115T060000Z", "2027-01-15T06:00:00+00:00", 9.1, **passed,
                parameters={"environment": "prod", "dry_run": True}),
        _result("smoke-test", "20270114T220000Z", "2027-01-14T22:00:00+00:00", 15.3, **passed),
        _result("smoke-test", "20270115T075500Z", "2027-01-15T07:55:00+00:00", 14.8, **passed),
    ):
        write_result(result, runs / Path(result.result).name)
