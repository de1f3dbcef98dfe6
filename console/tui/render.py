"""Cells as the screens show them: one word's colour for every state the model knows, ages, sparklines.

Pure functions from model values to Rich `Text`; the one place that decides what green, yellow and red
mean, so a failed rollout, a STOPped group and a crash-looping pod read alike on every screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text

from console.model.findings import Severity
from console.output import format_age, format_duration, sparkline

GOOD = frozenset({"ok", "complete", "running", "ready", "yes", "true", "defined", "caught-up", "redriven",
                  "succeeded", "completed", "inactive", "passed"})
BAD = frozenset({"err", "error", "failed", "degraded", "stop", "stall", "rewind", "down", "crashloopbackoff",
                 "imagepullbackoff", "errimagepull", "expired", "notready", "false", "firing", "poison", "refuse",
                 "refused", "lost"})
WARNING = frozenset({"warn", "warning", "progressing", "pending", "paused", "stale", "unknown", "waiting",
                     "expiring", "claimed", "containercreating", "terminating", "absent"})
STYLES = {"good": "green", "bad": "bold red", "warning": "yellow", "plain": "", "muted": "dim"}


def tone(word: str | None) -> str:
    """good, bad, warning or plain: how a state word should look."""
    key = (word or "").strip().lower()
    if key in BAD:
        return "bad"
    if key in WARNING:
        return "warning"
    if key in GOOD:
        return "good"
    return "plain"


def state(word: str | None, *, problem: bool | None = None) -> Text:
    """A state word in its colour; `problem` (the model's own verdict) wins over the word."""
    text = word if word else "-"
    kind = "bad" if problem else tone(word)
    return Text(text, style=STYLES[kind])


def severity(level: Severity) -> Text:
    return Text(level.label.upper(), style={Severity.ERROR: STYLES["bad"], Severity.WARN: STYLES["warning"],
                                            Severity.INFO: STYLES["muted"]}[level])


def ago(epoch: float | None, now: float) -> str:
    """`4m ago`, or `-` when unknown (console.output.format_age: whole minutes past one)."""
    return "-" if epoch is None else f"{age(max(0.0, now - epoch))} ago"


def age(seconds: float | None) -> str:
    """An age (how old a record, a pod, a dead letter is): whole minutes past one, so it ticks once a minute."""
    return format_age(seconds)


def duration(seconds: float | None) -> str:
    return format_duration(seconds)


def rate(per_s: float | None) -> str:
    return "-" if per_s is None else f"{per_s:.2f}"


def spark(values: Sequence[float | None], width: int | None = None) -> str:
    """A sparkline of the last `width` values (unknown points drawn as zero), right-aligned in `width`: the
    newest point stays at the right edge, and the column does not widen by one with every new sample (each
    widening lays the screen out again)."""
    points = [v or 0.0 for v in values]
    if width is None:
        return sparkline(points) if points else ""
    return sparkline(points[-width:]).rjust(width) if points else ""


def joined(parts: Iterable[str | None], sep: str = ", ") -> str:
    return sep.join(p for p in parts if p) or "-"
