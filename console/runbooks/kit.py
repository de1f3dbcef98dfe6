"""What a runbook's cells use to state results: checks, figures, tables, plots and the final verdict.

A runbook never decides pass or fail in free text. Each cell that measures something records it here:
`verdict.check(name, ok, detail)` and `verdict.figure(name, value, unit)`. Both display a readable line and,
beside it, a machine-readable copy under their own MIME types, so the runner finds every check and figure
in the executed notebook together with the cell that produced it, whatever the kernel printed around them.
The last cell calls `verdict.finish()`, which shows the table of checks and raises `RunbookFailed` when one
failed: the executed notebook itself says pass or fail, and papermill marks the run as failed.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import Any

from console.output import table as text_table

CHECK_MIME = "application/vnd.todo.runbook.check+json"
FIGURE_MIME = "application/vnd.todo.runbook.figure+json"
VERDICT_MIME = "application/vnd.todo.runbook.verdict+json"


class RunbookFailed(Exception):
    """Raised by the last cell when a check failed: the message lists the failed checks."""


def _display(bundle: dict[str, Any]) -> None:
    from IPython.display import display

    display(bundle, raw=True)


class Table:
    """Rows a person reads: text in a terminal and in the JSON record, an HTML table in the rendering."""

    def __init__(self, headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> None:
        self.headers = list(headers)
        self.rows = [list(r) for r in rows]
        self.title = title

    def __repr__(self) -> str:
        body = text_table(self.headers, self.rows) if self.rows else "(none)"
        return f"{self.title}\n{body}" if self.title else body

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>"
                       for row in self.rows)
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> Table:
    return Table(headers, rows, title)


def show_plot(figure: Any) -> None:
    """Display a matplotlib Figure as a PNG (whatever the kernel's backend) and free it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    from IPython.display import Image, display

    display(Image(data=buffer.getvalue(), format="png"))


class Verdict:
    """The checks and figures of one run; `finish()` in the last cell states pass or fail."""

    def __init__(self, runbook: str) -> None:
        self.runbook = runbook
        self.checks: list[tuple[str, bool, str]] = []
        self.figures: list[tuple[str, Any, str]] = []
        self.notes: list[str] = []

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        """Record a pass/fail statement (the run goes on: the verdict cell fails it at the end)."""
        ok = bool(ok)
        self.checks.append((name, ok, detail))
        mark = "PASS" if ok else "FAIL"
        _display({"text/plain": f"{mark}  {name}" + (f": {detail}" if detail else ""),
                  CHECK_MIME: {"name": name, "ok": ok, "detail": detail}})

    def record(self, outcome: Any, figure: str | None = None) -> None:
        """A procedure's Outcome (name, ok, detail, seconds) as a check, and its seconds as `figure`."""
        self.check(outcome.name, outcome.ok, outcome.detail)
        if figure is not None:
            self.figure(figure, outcome.seconds, "s")

    def figure(self, name: str, value: float | int | str | None, unit: str = "") -> None:
        """Record a measured value (rounded for reading; the JSON result keeps it as given)."""
        if isinstance(value, float):
            value = round(value, 3)
        self.figures.append((name, value, unit))
        shown = "-" if value is None else f"{value}{' ' + unit if unit else ''}"
        _display({"text/plain": f"{name}: {shown}", FIGURE_MIME: {"name": name, "value": value, "unit": unit}})

    def note(self, text: str) -> None:
        """Context for the verdict that is neither a check nor a figure (e.g. what a dry run skipped)."""
        self.notes.append(text)
        print(text)

    @property
    def failed(self) -> list[tuple[str, bool, str]]:
        return [c for c in self.checks if not c[1]]

    def finish(self) -> None:
        """The last cell: every check in a table, then pass, or RunbookFailed naming what failed."""
        rows = [("PASS" if ok else "FAIL", name, detail) for name, ok, detail in self.checks]
        _display({"text/plain": repr(table(["", "CHECK", "DETAIL"], rows)),
                  "text/html": table(["", "check", "detail"], rows)._repr_html_(),
                  VERDICT_MIME: {"passed": not self.failed and bool(self.checks),
                                 "failed": [name for name, _, _ in self.failed], "notes": self.notes}})
        if not self.checks:
            raise RunbookFailed(f"{self.runbook} checked nothing: a runbook must state what it verified")
        if self.failed:
            reasons = "; ".join(f"{name}: {detail}" if detail else name for name, _, detail in self.failed)
            raise RunbookFailed(f"{len(self.failed)} of {len(self.checks)} checks failed: {reasons}")
        print(f"PASSED: {self.runbook}, {len(self.checks)} checks" + "".join(f"\n{n}" for n in self.notes))
