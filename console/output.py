"""What every operator command promises a person and a script: tables, `--json`, exit codes, confirmations.

Scripts (CI gates, runbooks, cron checks) rely on three things being the same in every command, so they
live here once:
- exit codes: 0 healthy or done, 1 a problem found (lag in ERR, a failed rollout, an alert firing),
  2 usage or connection error (one line on stderr, never a traceback: `console.cli.CliError`);
- `--json`: one JSON document on stdout with a `kind` naming its shape and a `version` that only changes
  when a field is removed or changes meaning (fields may be added); console/README.md documents each kind;
- mutations ask before they act unless `--yes`, show what they would do with `--dry-run`, and are
  refused outright under `--readonly` (or `TODO_CONSOLE_READONLY=1`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from enum import IntEnum
from typing import Any

from console.cli import CliError

JSON_VERSION = 1


class Exit(IntEnum):
    OK = 0
    PROBLEM = 1
    ERROR = 2


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document (shape: console/README.md)")


def add_mutation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="show what would be done, change nothing")
    parser.add_argument("--readonly", action="store_true",
                        help="refuse every change (also TODO_CONSOLE_READONLY=1)")


def readonly(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "readonly", False)) or os.environ.get("TODO_CONSOLE_READONLY", "").lower() in (
        "1", "true", "yes")


def guard_mutation(args: argparse.Namespace, action: str) -> None:
    """Refuse `action` under --readonly, before anything is read or changed."""
    if readonly(args):
        raise CliError(f"{action}: refused, the console is read-only (--readonly / TODO_CONSOLE_READONLY)")


def confirm(args: argparse.Namespace, question: str) -> bool:
    """Ask `question` on the terminal unless --yes; without a terminal, --yes is required."""
    if getattr(args, "yes", False):
        return True
    if not sys.stdin.isatty():
        raise CliError(f"{question.rstrip('?')}: needs --yes when not run from a terminal")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def emit_json(kind: str, payload: Mapping[str, Any], *, target: str | None = None) -> None:
    """Print the command's document: `kind`, `version`, `target`, `generated_at`, then the payload."""
    document = {"kind": kind, "version": JSON_VERSION, "target": target,
                "generated_at": round(time.time(), 3), **payload}
    json.dump(document, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns aligned with two spaces, `-` for missing values: readable, and still `awk`-able."""
    text_rows = [[_cell(v) for v in row] for row in rows]
    all_rows = [list(headers), *text_rows]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in all_rows)


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """A trend in one cell: eight heights scaled to the largest value; all zero stays flat at the bottom."""
    top = max(values, default=0.0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1) + 0.5))] if v > 0 else _BARS[0]
                   for v in values)


def format_age(seconds: float | None) -> str:
    """How long ago, k9s's way: seconds under a minute (45s), whole minutes under an hour (5m), then as
    `format_duration`. An age past a few minutes gains nothing from its ticking seconds, and a dashboard that
    shows them repaints every table with an age in it on every refresh."""
    if seconds is not None and not math.isnan(seconds) and 60 <= round(seconds) < 3600:
        return f"{round(seconds) // 60}m"
    return format_duration(seconds)


def format_duration(seconds: float | None) -> str:
    """3s, 4m05s, 2h10m, 3d04h: short enough for a table column."""
    if seconds is None or math.isnan(seconds):
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
