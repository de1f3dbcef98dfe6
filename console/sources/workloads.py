"""What the rollout, pods and resources commands (and the dashboard) ask of a target, cluster or sandbox.

`Workloads` is the capability both `KubeSource` (console.sources.kube) and `SandboxSource`
(console.sources.sandbox) provide, so a command is written once: `open_workloads(target)` picks the
source, the command calls `rollouts()`, `restart()`... and prints the `console.model` dataclasses it
gets back. Waiting for a rollout is written here once too, over that interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from console.model.platform import PlatformReport
from console.model.pods import PodSummary
from console.model.rollout import Revision, RolloutState, RolloutStatus, UndoPlan
from console.target import ClusterTarget, Target


class Unknown(ValueError):
    """A request the source cannot carry out as asked (no such Deployment, the sandbox has no revisions,
    a paused rollout): one line for the user, and no change made."""


@dataclass(frozen=True)
class RestartResult:
    deployment: str
    dry_run: bool
    generation: int | None  # the Deployment's generation after the patch (None in the sandbox)
    detail: str


@dataclass(frozen=True)
class UndoResult:
    plan: UndoPlan
    dry_run: bool
    generation: int


@dataclass(frozen=True)
class WaitOutcome:
    status: RolloutStatus
    finished: bool  # complete or failed; False: the timeout came first


class Workloads(Protocol):
    label: str
    address: str

    def rollouts(self) -> list[RolloutStatus]: ...
    def rollout(self, name: str) -> RolloutStatus: ...
    def history(self, name: str) -> list[Revision]: ...
    def restart(self, name: str, *, dry_run: bool = False, timeout_s: float = 60.0) -> RestartResult: ...
    def undo(self, name: str, to_revision: int = 0, *, dry_run: bool = False) -> UndoResult: ...
    def pods(self, service: str | None = None) -> list[PodSummary]: ...
    def pod(self, name: str) -> PodSummary: ...
    def resources(self, kinds: Iterable[str] | None = None, now: float | None = None) -> PlatformReport: ...
    def wait_for_change(self, timeout_s: float) -> bool: ...
    def close(self) -> None: ...


def open_workloads(target: Target) -> Workloads:
    """The source for this target; client libraries load only for the target that needs them."""
    if isinstance(target, ClusterTarget):
        from console.sources.kube import KubeSource
        return KubeSource(target)
    from console.sources.sandbox import SandboxSource
    return SandboxSource(target)


def wait_for_rollout(source: Workloads, name: str, timeout_s: float, *, min_generation: int | None = None,
                     on_change: Callable[[RolloutStatus], None] | None = None) -> WaitOutcome:
    """Wait until the rollout completes or fails (kubectl rollout status --timeout), reading the cache as it
    changes. `min_generation`: the generation a restart or undo just wrote; an older view of the Deployment
    (the cache before the watch delivered the change) is not mistaken for the rollout being done."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        status = source.rollout(name)
        if on_change is not None and status.message != last:
            on_change(status)
            last = status.message
        fresh = min_generation is None or status.generation >= min_generation
        if fresh and status.state in (RolloutState.COMPLETE, RolloutState.FAILED):
            return WaitOutcome(status, finished=True)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return WaitOutcome(status, finished=False)
        source.wait_for_change(min(remaining, 1.0))


def pick(names: Sequence[str], wanted: str, what: str, *, prefix: bool = True) -> str:
    """`wanted` among `names`: exactly, else (with `prefix`) the one name it starts; else a one-line refusal."""
    if wanted in names:
        return wanted
    if prefix:
        matches = [n for n in names if n.startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Unknown(f"{wanted!r} matches several: {', '.join(sorted(matches)[:8])}")
    known = ", ".join(sorted(names)[:12]) + (", ..." if len(names) > 12 else "")
    raise Unknown(f"no {what} named {wanted!r} (known: {known or 'none'})")
