"""`todo-console runbook list | show NAME | run NAME`: the notebooks in notebooks/, run by papermill.

Exit codes, as everywhere in the console: 0 the runbook passed (or list/show worked); 1 it failed (a check
failed, a cell raised, the kernel died); 2 bad usage, an unknown runbook or a parameter it refuses, with one
line on stderr and nothing run. Progress goes to stderr, the result to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli import CliError
from console.output import Exit, add_output_arguments, emit_json, guard_mutation, table

if TYPE_CHECKING:
    from console.runbooks.model import CellProgress, Runbook, RunResult


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runbook", help="runbooks: notebooks executed by papermill, with parameters, progress and a record",
        description="List, describe and run the runbooks in notebooks/. Every run leaves an executed notebook, "
                    "its HTML rendering and a JSON result, named with the runbook and the UTC time.",
    )
    actions = parser.add_subparsers(dest="runbook_command", metavar="ACTION")
    actions.required = True
    runs = argparse.ArgumentParser(add_help=False)
    runs.add_argument("--out", type=Path, default=None, metavar="DIR",
                      help="where runs are kept (default: $TODO_RUNBOOK_RUNS_DIR or notebooks/runs)")

    listing = actions.add_parser("list", parents=[runs], help="every runbook, its parameters and its last result")
    add_output_arguments(listing)
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", parents=[runs], help="one runbook: what it does, its parameters, last result")
    show.add_argument("name", metavar="NAME")
    add_output_arguments(show)
    show.set_defaults(func=run_show)

    run = actions.add_parser("run", parents=[runs], help="run a runbook (exit 1 when it fails)")
    run.add_argument("name", metavar="NAME")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                     help="a parameter value (repeatable); checked against the runbook's declaration first")
    run.add_argument("-f", "--parameters-file", type=Path, default=None, metavar="FILE",
                     help="parameter values from a YAML mapping; -p wins over the file")
    run.add_argument("--show-output", "-v", action="store_true", help="print what the cells print, as they run")
    run.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                     help="fail a cell that runs longer than this (default: no limit)")
    run.add_argument("--readonly", action="store_true",
                     help="refuse to run (also TODO_CONSOLE_READONLY=1): runbooks act on the system, and even a "
                          "dry run reads credentials and calls the cloud's and the cluster's APIs")
    add_output_arguments(run)
    run.set_defaults(func=run_run)


def _out(args: argparse.Namespace) -> Path:
    from console.runbooks.runner import runs_dir

    return args.out or runs_dir()


def run_list(args: argparse.Namespace) -> int:
    from console.runbooks.catalog import list_runbooks
    from console.runbooks.model import RunbookError
    from console.runbooks.records import last_result

    try:
        books = list_runbooks()
    except RunbookError as exc:
        raise CliError(str(exc)) from None
    out = _out(args)
    lasts = {b.name: last_result(out, b.name) for b in books}
    if args.json:
        emit_json("runbooks", {"runs_dir": str(out), "runbooks": [
            {**b.to_dict(), "last_result": _as_dict(lasts[b.name])} for b in books]})
        return Exit.OK
    rows = [(b.name, ", ".join(p.name for p in b.parameters), _last(lasts[b.name])) for b in books]
    print(table(["RUNBOOK", "PARAMETERS", "LAST RUN"], rows))
    return Exit.OK


def _as_dict(result: RunResult | None) -> dict[str, Any] | None:
    return result.to_dict() if result is not None else None


def _last(result: RunResult | None) -> str:
    if result is None:
        return "never run"
    when = result.started_at[:16].replace("T", " ")
    text = f"{result.status} {when} UTC ({result.seconds:.0f}s)"
    if result.failure and result.failure.cell:
        text += f" at {result.failure.cell}"
    return text


def _load(name: str) -> Runbook:
    from console.runbooks.catalog import load_runbook
    from console.runbooks.model import RunbookError

    try:
        return load_runbook(name)
    except RunbookError as exc:
        raise CliError(str(exc)) from None


def run_show(args: argparse.Namespace) -> int:
    from console.runbooks.records import last_result

    book = _load(args.name)
    last = last_result(_out(args), book.name)
    if args.json:
        emit_json("runbook", {**book.to_dict(), "last_result": _as_dict(last)})
        return Exit.OK
    print(f"{book.name}: {book.title}")
    if book.summary:
        print(book.summary)
    print(f"notebook  {book.path}")
    print()
    print(table(["PARAMETER", "TYPE", "DEFAULT", "ALLOWED", "HELP"],
                [(p.name, p.type, repr(p.default), p.constraint or "-", p.help) for p in book.parameters]))
    print()
    print(f"last run  {_last(last)}")
    if last:
        print(f"          {last.notebook}")
    return Exit.OK


def run_run(args: argparse.Namespace) -> int:
    from console.runbooks.model import RunbookError
    from console.runbooks.parameters import load_parameter_file, parse_assignments, resolve
    from console.runbooks.runner import run_runbook

    book = _load(args.name)
    guard_mutation(args, f"runbook run {book.name}")
    try:
        values: dict[str, Any] = load_parameter_file(args.parameters_file) if args.parameters_file else {}
        values.update(parse_assignments(args.parameter))
        resolve(book, values)  # refused here, before a line is printed or a kernel started
        printer = _ProgressPrinter(stream_output=args.show_output)
        print(f"running {book.name} -> {_out(args)}", file=sys.stderr, flush=True)
        result = run_runbook(book, values, out_dir=_out(args), progress=printer.progress,
                             output=printer.output if args.show_output else None, cell_timeout_s=args.cell_timeout)
    except RunbookError as exc:
        raise CliError(f"{book.name}: {exc}") from None
    printer.close()
    if args.json:
        emit_json("runbook-run", result.to_dict())
    else:
        print(summary(result))
    return Exit.OK if result.passed else Exit.PROBLEM


class _ProgressPrinter:
    """`[3/9] freeze the broker ... ok 4.1s` on stderr; with the cells' output, one line per event."""

    def __init__(self, *, stream_output: bool) -> None:
        self.stream_output = stream_output
        self.open_line = False

    def progress(self, event: CellProgress) -> None:
        ref = event.cell
        head = f"[{ref.index}/{ref.total}] {ref.name}"
        if event.state == "running":
            self._end_line()
            print(f"{head} ...", end="\n" if self.stream_output else "", file=sys.stderr, flush=True)
            self.open_line = not self.stream_output
            return
        outcome = "ok" if event.state == "passed" else "FAILED"
        tail = f" {outcome} {event.seconds:.1f}s" + (f": {event.error}" if event.error else "")
        if self.open_line:
            print(tail, file=sys.stderr, flush=True)
        else:
            print(f"{head}{tail}", file=sys.stderr, flush=True)
        self.open_line = False

    def output(self, text: str) -> None:
        self._end_line()
        sys.stderr.write(text)
        sys.stderr.flush()

    def _end_line(self) -> None:
        if self.open_line:
            print(file=sys.stderr, flush=True)
            self.open_line = False

    def close(self) -> None:
        self._end_line()


def summary(result: RunResult) -> str:
    """The result as a person reads it: the failure first, then the checks, the figures and the files."""
    lines = []
    if result.failure:
        lines.append(f"FAILED at {result.failure.cell or 'start-up'}: {result.failure.reason}")
        if result.failure.stopped_at:
            lines.append(f"  (the run stopped at {result.failure.stopped_at})")
    else:
        lines.append(f"PASSED: {result.runbook}, {len(result.checks)} checks in {result.seconds:.0f}s")
    if result.checks:
        lines.append("checks")
        lines += [f"  {'PASS' if c.ok else 'FAIL'}  {c.name}" + (f": {c.detail}" if c.detail else "")
                  for c in result.checks]
    if result.figures:
        lines.append("figures")
        width = max(len(f.name) for f in result.figures)
        lines += [f"  {f.name:<{width}}  {'-' if f.value is None else f.value}{' ' + f.unit if f.unit else ''}"
                  for f in result.figures]
    lines.append(f"notebook  {result.notebook}")
    if result.html:
        lines.append(f"html      {result.html}")
    lines.append(f"result    {result.result}")
    return "\n".join(lines)
