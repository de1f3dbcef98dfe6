"""What is wrong, where, since when, and what to do: the one shape every area reports problems in.

Each area of the console (rollouts, pods, platform resources, lag, dead letters, alerts, the sources
themselves) turns its own state into `Finding`s with a pure function; `status` and the dashboard's
Overview only sort and count them. One shape means one exit-code rule (any finding at `error` or `warn`
severity is a problem: exit 1) and one place where "anything wrong is visible at a glance and one key
away from its detail" is decided: `Finding.view` names the screen or command that shows the detail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import IntEnum


class Severity(IntEnum):
    """Ordered so the worst sorts first when reversed; `info` is context, never a problem."""

    INFO = 0
    WARN = 1
    ERROR = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One problem (or notable fact) found in one area about one subject."""

    severity: Severity
    area: str  # rollouts | pods | resources | lag | dlq | alerts | sources
    subject: str  # what it is about: a Deployment, a consumer group, a DLQ topic, an alert name, a source
    message: str  # one line a person reads at 3 a.m.
    since: float | None = None  # unix seconds when it started, when known
    hint: str | None = None  # what to do next (a command to run)
    view: str | None = None  # the dashboard screen (or CLI command) that shows the detail

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["severity"] = self.severity.label
        return data


def worst(findings: Iterable[Finding]) -> Severity:
    return max((f.severity for f in findings), default=Severity.INFO)


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first; within a severity the oldest first (the longest-standing problem leads)."""
    return sorted(findings, key=lambda f: (-f.severity, f.since if f.since is not None else float("inf"),
                                          f.area, f.subject))


def is_problem(findings: Iterable[Finding]) -> bool:
    """The exit-code rule every command shares: a warning or an error means exit 1."""
    return worst(findings) >= Severity.WARN
