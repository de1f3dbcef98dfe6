"""Carry out a plan, step by step in its order; destroy is the same walk over a destroy plan.

Idempotent and resumable without a state file: a plan is made from what OCI holds right now, so after an
apply killed at any point the next plan sees what was made (by its tags), waits for what is still being
made, and carries on from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioning.model import Desired, Kind, resolve
from provisioning.plan import Action, Plan, Step


class Cloud(Protocol):
    """What apply needs from OCI (provisioning.oci_client.OciClient)."""

    def create(self, want: Desired, attrs: Mapping[str, Any]) -> str: ...

    def update(self, want: Desired, resource_id: str, attrs: Mapping[str, Any], changed: set[str]) -> None: ...

    def delete(self, kind: Kind, resource_id: str, label: str) -> None: ...

    def wait_ready(self, kind: Kind, resource_id: str, label: str) -> None: ...

    def wait_gone(self, kind: Kind, resource_id: str, label: str) -> None: ...


class ApplyRefused(Exception):
    """The plan has blocked steps; nothing was changed."""


@dataclass
class Outcome:
    done: list[Step] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "ids": self.ids,
                "done": [{"action": s.action.value, "key": s.key, "kind": s.kind.value, "name": s.name}
                         for s in self.done]}


def apply_plan(plan: Plan, cloud: Cloud, report: Callable[[str], None] = lambda message: None,
               clock: Callable[[], float] = time.monotonic) -> Outcome:
    if plan.blocked:
        raise ApplyRefused("; ".join(f"{step.key} ({step.name}): {step.reason}" for step in plan.blocked))
    started = clock()
    outcome = Outcome(ids=dict(plan.ids))
    for step in plan.steps:
        _run(step, cloud, outcome.ids)
        if step.action is not Action.KEEP:
            outcome.done.append(step)
    outcome.seconds = clock() - started
    report(f"done in {outcome.seconds:.1f}s: {len(outcome.done)} changes")
    return outcome


def _run(step: Step, cloud: Cloud, ids: dict[str, str]) -> None:
    label = f"{step.kind.label} {step.name}"
    if step.pending and step.id:
        cloud.wait_ready(step.kind, step.id, label)
    if step.action in (Action.DELETE, Action.REPLACE) and step.id:
        cloud.delete(step.kind, step.id, label)
    for old in step.wait_for:
        cloud.wait_gone(step.kind, old, label)
    if step.desired is None or step.action in (Action.KEEP, Action.DELETE):
        return
    attrs = _resolved(step.desired, ids)
    if step.action in (Action.CREATE, Action.REPLACE):
        ids[step.key] = cloud.create(step.desired, attrs)
    elif step.action is Action.UPDATE and step.id:
        cloud.update(step.desired, step.id, attrs, {change.attr for change in step.changes})


def _resolved(want: Desired, ids: Mapping[str, str]) -> dict[str, Any]:
    missing = sorted(key for key in want.refs() if key not in ids)
    if missing:
        raise ApplyRefused(f"{want.key} needs {', '.join(missing)}, which does not exist")
    return {attr: resolve(value, ids) for attr, value in want.attrs.items()}
