"""Alerts as Prometheus evaluates them: which fire, which are pending, since when, and what they say.

The rules are the cluster's own (kustomize/components/observability/todo-alerts-prometheusrule.yaml), loaded
by the cluster's Prometheus and by the sandbox's. An alert is `pending` while its expression holds for less
than the rule's `for`, then `firing`; only firing alerts count as a problem (exit code 1), pending ones are
shown so an operator sees what is about to fire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
STATE_ORDER = {"firing": 0, "pending": 1}


@dataclass(frozen=True)
class Alert:
    """One active alert: a rule's expression holding for one set of labels."""

    name: str
    state: str  # firing | pending
    labels: dict[str, str]
    annotations: dict[str, str]
    active_at: float | None  # unix seconds: when the expression first held (the start of `pending`)
    value: float | None
    group: str = ""
    for_s: float = 0.0  # the rule's `for`: how long it stays pending before it fires

    @property
    def severity(self) -> str | None:
        return self.labels.get("severity")

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("description") or ""

    @property
    def firing(self) -> bool:
        return self.state == "firing"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "severity": self.severity, "group": self.group,
                "active_at": self.active_at, "for_s": self.for_s, "value": self.value,
                "summary": self.summary, "labels": self.labels, "annotations": self.annotations}


@dataclass(frozen=True)
class AlertReport:
    """Every active alert, and how many rules Prometheus evaluates (0 rules means no rules are loaded:
    an empty alert list then proves nothing)."""

    alerts: tuple[Alert, ...]
    rules: int
    rule_errors: dict[str, str] = field(default_factory=dict)  # rule name -> lastError, for unhealthy rules

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.firing)

    @property
    def pending(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.state == "pending")


def by_urgency(alerts: Sequence[Alert]) -> list[Alert]:
    """Firing before pending, critical before warning, the oldest first: the order an operator reads."""
    return sorted(alerts, key=lambda a: (STATE_ORDER.get(a.state, 9), SEVERITY_ORDER.get(a.severity or "", 9),
                                         a.active_at or 0.0, a.name))
