"""Reading executed runbooks back: what each cell did, said and measured; the JSON results of past runs.

An executed notebook is the record of a run. This module reads it without a kernel: each code cell's name
(its first `# ` comment line), how it ended (papermill's cell metadata), the checks and figures the cell
recorded through console.runbooks.kit (their own MIME types), its error, and its outputs as text. The JSON
result beside each notebook (`<runbook>-<UTC stamp>.json`) is what `runbook list` and the dashboard read for
"last result".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.runbooks.kit import CHECK_MIME, FIGURE_MIME, VERDICT_MIME
from console.runbooks.model import CellRecord, CellRef, Check, Figure, RunbookError, RunResult

INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STAMP = re.compile(r"^(?P<name>[a-z0-9-]+)-(?P<stamp>\d{8}T\d{6}Z)(-\d+)?$")


def cell_name(cell: Any) -> str:
    """What a code cell is called in progress lines and results: its first `# ` comment line."""
    tags = cell.get("metadata", {}).get("tags", [])
    if INJECTED_TAG in tags:
        return "injected parameters"
    if PARAMETERS_TAG in tags:
        return "parameters"
    lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
    if lines and lines[0].startswith("# "):
        return lines[0][2:].strip()
    return (lines[0][:60] if lines else "(empty)")


def code_cells(notebook: Any) -> list[tuple[CellRef, Any]]:
    """The code cells with their references, in order (markdown cells are not counted)."""
    indexed = [(i, c) for i, c in enumerate(notebook.cells) if c.cell_type == "code" and c.source.strip()]
    total = len(indexed)
    return [(CellRef(n, total, cell_name(c), i), c) for n, (i, c) in enumerate(indexed, start=1)]


@dataclass(frozen=True)
class CellError:
    cell: CellRef
    name: str
    value: str

    @property
    def reason(self) -> str:
        return f"{self.name}: {self.value}" if self.value else self.name


@dataclass
class Reading:
    """What an executed notebook says, cell by cell."""

    cells: list[CellRecord] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    error: CellError | None = None
    refs: dict[str, CellRef] = field(default_factory=dict)  # label -> ref


def read_notebook(notebook: Any) -> Reading:
    reading = Reading()
    for ref, cell in code_cells(notebook):
        label = ref.label()
        reading.refs[label] = ref
        meta = cell.get("metadata", {}).get("papermill", {})
        status = meta.get("status")
        failed_here = False
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if CHECK_MIME in data:
                check = data[CHECK_MIME]
                reading.checks.append(Check(check["name"], bool(check["ok"]), check.get("detail", ""), label))
                failed_here |= not check["ok"]
            if FIGURE_MIME in data:
                figure = data[FIGURE_MIME]
                reading.figures.append(Figure(figure["name"], figure.get("value"), figure.get("unit", ""), label))
            if VERDICT_MIME in data:
                reading.verdict = dict(data[VERDICT_MIME])
            if output.get("output_type") == "error" and reading.error is None:
                reading.error = CellError(ref, output.get("ename", "Error"), output.get("evalue", ""))
                failed_here = True
        if failed_here or status in ("failed", "running") or meta.get("exception"):
            state = "failed"  # raised, recorded a failed check, or the kernel died in it
        elif status == "pending" or cell.get("execution_count") is None:
            state = "skipped"  # never reached
        else:
            state = "passed"
        reading.cells.append(CellRecord(ref.index, ref.name, state, meta.get("duration")))  # type: ignore[arg-type]
    return reading


@dataclass(frozen=True)
class OutputView:
    """One output of a cell as text: `kind` is stream, text, error or image (images have no text)."""

    kind: str
    text: str


@dataclass(frozen=True)
class CellView:
    cell: CellRef
    source: str
    outputs: tuple[OutputView, ...]


def cell_outputs(notebook_path: Path) -> list[CellView]:
    """Every code cell of an executed notebook with its outputs as text: what the dashboard shows to read."""
    views = []
    for ref, cell in code_cells(_read(notebook_path)):
        outputs = []
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                outputs.append(OutputView("stream", output.get("text", "")))
            elif kind == "error":
                trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
                outputs.append(OutputView("error", trace or f"{output.get('ename')}: {output.get('evalue')}"))
            elif "text/plain" in output.get("data", {}):
                outputs.append(OutputView("text", output["data"]["text/plain"]))
            elif any(m.startswith("image/") for m in output.get("data", {})):
                outputs.append(OutputView("image", ""))
        views.append(CellView(ref, cell.source, tuple(outputs)))
    return views


def _read(path: Path) -> Any:
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError) as exc:
        raise RunbookError(f"{path}: not a readable notebook: {exc}") from None


# --- JSON results ------------------------------------------------------------------------------------------


def write_result(result: RunResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")


def read_result(path: Path) -> RunResult:
    try:
        return RunResult.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunbookError(f"{path}: not a runbook result: {exc}") from None


def list_results(out_dir: Path, runbook: str | None = None) -> list[RunResult]:
    """Past runs in `out_dir`, newest first; files that are not results are passed over."""
    found = []
    for path in out_dir.glob("*.json") if out_dir.is_dir() else ():
        match = STAMP.match(path.stem)
        if not match or (runbook is not None and match["name"] != runbook):
            continue
        try:
            found.append((match["stamp"], path.stat().st_mtime, read_result(path)))
        except RunbookError:
            continue
    return [r for _, _, r in sorted(found, key=lambda item: (item[0], item[1]), reverse=True)]


def last_result(out_dir: Path, runbook: str) -> RunResult | None:
    results = list_results(out_dir, runbook)
    return results[0] if results else None
