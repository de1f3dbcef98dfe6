"""The runbook runner's data: what a runbook declares, what a run reports, cell by cell.

Plain dataclasses with `to_dict`/`from_dict`, no I/O: the CLI prints them, the JSON result stores them, and
the dashboard's Runbooks screen renders them without knowing how a notebook is executed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

ParameterType = Literal["str", "int", "float", "bool"]
RunStatus = Literal["passed", "failed"]
CellState = Literal["running", "passed", "failed"]


class RunbookError(Exception):
    """A user-facing failure before or around a run (unknown runbook, unreadable notebook): one line."""


class ParameterError(RunbookError):
    """A parameter value the runbook does not accept; the message starts with the parameter's name."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"parameter {name}: {problem}")
        self.name = name
        self.problem = problem


@dataclass(frozen=True)
class Parameter:
    """One assignment of a runbook's `parameters` cell, with the convention's type and constraint."""

    name: str
    type: ParameterType
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None  # `{a, b}` in the comment
    minimum: float | None = None  # `[lo..hi]` in the comment, either end may be left out
    maximum: float | None = None

    @property
    def constraint(self) -> str:
        """The constraint as the comment writes it, for `runbook show` and error messages."""
        if self.choices is not None:
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        if self.minimum is not None or self.maximum is not None:
            low = "" if self.minimum is None else f"{self.minimum:g}"
            high = "" if self.maximum is None else f"{self.maximum:g}"
            return f"[{low}..{high}]"
        return ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["choices"] = list(self.choices) if self.choices is not None else None
        return data


@dataclass(frozen=True)
class Runbook:
    """A notebook under notebooks/, named after its file: the procedure, lowercase words and hyphens."""

    name: str
    path: Path
    title: str
    summary: str
    parameters: tuple[Parameter, ...]

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "title": self.title, "summary": self.summary,
                "parameters": [p.to_dict() for p in self.parameters]}


@dataclass(frozen=True)
class CellRef:
    """A code cell of the executed notebook: its position among the code cells and its name.

    `index` is 1-based among code cells (what `[3/9]` shows); `notebook_index` is its position in the
    executed notebook's cell list (markdown included), for readers that open the notebook.
    """

    index: int
    total: int
    name: str
    notebook_index: int

    def label(self) -> str:
        return f"cell {self.index}/{self.total} \"{self.name}\""


@dataclass(frozen=True)
class CellProgress:
    """What a progress callback receives: a cell started (`running`), or ended (`passed`/`failed`)."""

    cell: CellRef
    state: CellState
    seconds: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Check:
    """One pass/fail statement a runbook made (`kit.Verdict.check`), with the cell that made it."""

    name: str
    ok: bool
    detail: str = ""
    cell: str | None = None


@dataclass(frozen=True)
class Figure:
    """One measured value a runbook recorded (`kit.Verdict.figure`)."""

    name: str
    value: float | int | str | None
    unit: str = ""
    cell: str | None = None


@dataclass(frozen=True)
class CellRecord:
    """How one code cell ended in a run."""

    index: int
    name: str
    state: CellState | Literal["skipped"]
    seconds: float | None = None


@dataclass(frozen=True)
class Failure:
    """Where and why a run failed: the cell whose check failed (or that raised) and the reason."""

    cell: str | None  # `cell 6/10 "check the audit log"`; None when no cell ran (the kernel did not start)
    reason: str
    stopped_at: str | None = None  # the cell that stopped the run, when it is not `cell` (the verdict)


@dataclass
class RunResult:
    """The JSON result written beside the executed notebook and its HTML rendering."""

    runbook: str
    status: RunStatus
    started_at: str  # ISO 8601, UTC
    finished_at: str
    seconds: float
    parameters: dict[str, Any]
    notebook: str
    html: str | None
    result: str
    failure: Failure | None = None
    checks: list[Check] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    cells: list[CellRecord] = field(default_factory=list)
    version: int = 1

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        failure = data.get("failure")
        return cls(
            runbook=data["runbook"], status=data["status"], started_at=data["started_at"],
            finished_at=data["finished_at"], seconds=float(data["seconds"]), parameters=dict(data["parameters"]),
            notebook=data["notebook"], html=data.get("html"), result=data["result"],
            failure=Failure(**failure) if failure else None,
            checks=[Check(**c) for c in data.get("checks") or ()],
            figures=[Figure(**f) for f in data.get("figures") or ()],
            cells=[CellRecord(**c) for c in data.get("cells") or ()],
            version=int(data.get("version", 1)),
        )
