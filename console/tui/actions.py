"""What the screens ask for on demand, beyond the hub's refreshes: browse a DLQ, plan and carry out a redrive
or a purge, a rollout's history, a restart or an undo, one pod described. Each call does I/O and blocks, so
screens run them in thread workers (`DashboardScreen.run_action`); each returns the model's dataclasses and
raises only `ActionError` (one line for the operator)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from console.live.hub import Hub
from console.model.dlq import DeadLetter, LedgerEntry, PurgePlan, RedrivePlanItem, Selection, letter_state
from console.model.pods import PodSummary
from console.model.rollout import Revision
from console.sources.dead_letters import DeadLetters, PurgeResult, RedriveResult
from console.sources.health import SourceError
from console.sources.workloads import RestartResult, UndoResult, Unknown

T = TypeVar("T")


class ActionError(Exception):
    """An action that could not be done: the source's one line, or why the request cannot be done as asked."""


@dataclass(frozen=True)
class LetterRow:
    """A dead letter with what the DLQ screen shows beside it: the failure reason, its state, what settled it."""

    letter: DeadLetter
    reason: str | None
    state: str
    settled: LedgerEntry | None


def _guarded(call: Callable[[], T]) -> T:
    try:
        return call()
    except (SourceError, Unknown, ValueError) as exc:
        raise ActionError(str(exc)) from exc


def browse(hub: Hub, dlq: str, limit: int = 200) -> list[LetterRow]:
    def read(dead: DeadLetters) -> list[LetterRow]:
        letters = dead.browse(dlq, limit=limit)
        ledger = dead.ledger()
        rows = []
        for letter in letters:
            settled = ledger.settled_by(letter)
            rows.append(LetterRow(letter, dead.reason(letter), letter_state(letter, settled), settled))
        return rows
    return _guarded(lambda: hub.with_dead_letters(read))


def plan_redrive(hub: Hub, dlq: str, selection: Selection) -> list[RedrivePlanItem]:
    return _guarded(lambda: hub.with_dead_letters(lambda dead: dead.plan_redrive(dlq, selection)))


def redrive(hub: Hub, plan: list[RedrivePlanItem]) -> list[RedriveResult]:
    return _guarded(lambda: hub.with_dead_letters(lambda dead: dead.redrive(plan)))


def plan_purge(hub: Hub, dlq: str) -> PurgePlan:
    return _guarded(lambda: hub.with_dead_letters(lambda dead: dead.plan_purge(dlq)))


def purge(hub: Hub, plan: PurgePlan) -> PurgeResult:
    return _guarded(lambda: hub.with_dead_letters(lambda dead: dead.purge(plan)))


def history(hub: Hub, deployment: str) -> list[Revision]:
    return _guarded(lambda: hub.workloads().history(deployment))


def restart(hub: Hub, deployment: str, *, dry_run: bool = False) -> RestartResult:
    return _guarded(lambda: hub.workloads().restart(deployment, dry_run=dry_run))


def undo(hub: Hub, deployment: str, *, dry_run: bool = False) -> UndoResult:
    return _guarded(lambda: hub.workloads().undo(deployment, dry_run=dry_run))


def describe_pod(hub: Hub, name: str) -> PodSummary:
    return _guarded(lambda: hub.workloads().pod(name))
