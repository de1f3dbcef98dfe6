"""DLQ triage: how deep each dead-letter topic is, the waiting messages grouped by why they failed, and the
redrive of a chosen selection, planned first and carried out only outside a dry run.

Everything goes through the console's dead-letter code (console.sources.dead_letters over console.model.dlq),
the same that `todo-console dlq list|show|redrive` runs: the redrive sends each message back to its original
topic and partition, claims it in the ledger first so it is never redriven twice, and refuses poison (a
message redriven too often already). Pass means the selection named dead letters that are waiting, none of
them was refused, and (outside a dry run) every one was redriven.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from console.model.dlq import DeadLetter, DlqSummary, RedrivePlanItem, Selection
from console.output import format_duration
from console.runbooks.procedures import Outcome, ProcedureError
from console.sources.dead_letters import DeadLetters, RedriveResult
from console.sources.health import SourceError
from console.target import Target

BROWSE_LIMIT = 1000  # waiting dead letters read per DLQ to group them


def open_dead_letters(target: Target) -> DeadLetters:
    from console.sources.kafka import source_for
    from console.sources.wiring import rendered_wiring

    try:
        return DeadLetters(source_for(target), rendered_wiring())
    except SourceError as exc:
        raise ProcedureError(str(exc)) from None


def depth_rows(summaries: Sequence[DlqSummary]) -> list[tuple[object, ...]]:
    now = time.time()
    return [(s.topic, ",".join(s.apps), ",".join(s.original_topics), s.pending, s.waiting, s.redriven, s.last_hour,
             format_duration(now - s.oldest_waiting_at) if s.oldest_waiting_at else "-") for s in summaries]


def waiting_letters(dead: DeadLetters, summaries: Sequence[DlqSummary]) -> list[DeadLetter]:
    """The dead letters still waiting for a decision (not redriven, not purged), of every DLQ that has any."""
    ledger = dead.ledger()
    letters = []
    for summary in summaries:
        if summary.waiting:
            letters += [d for d in dead.browse(summary.topic, limit=BROWSE_LIMIT) if ledger.settled_by(d) is None]
    return letters


@dataclass(frozen=True)
class ReasonGroup:
    """Waiting dead letters that failed the same way: same DLQ, consumer, event type and reason."""

    dlq: str
    app: str
    event_type: str
    reason: str
    letters: tuple[DeadLetter, ...]

    @property
    def oldest_at(self) -> float | None:
        return min((d.dead_lettered_at for d in self.letters if d.dead_lettered_at), default=None)


def by_reason(dead: DeadLetters, letters: Sequence[DeadLetter]) -> list[ReasonGroup]:
    """Grouped by why they failed, the largest group first."""
    groups: dict[tuple[str, str, str, str], list[DeadLetter]] = {}
    for letter in letters:
        key = (letter.dlq, letter.app_id or "-", letter.event_type or "(not a CloudEvent)",
               dead.reason(letter) or "(no reason recorded: look in the consumer's logs by event id)")
        groups.setdefault(key, []).append(letter)
    found = [ReasonGroup(*key, tuple(items)) for key, items in groups.items()]
    return sorted(found, key=lambda g: (-len(g.letters), g.dlq, g.reason))


def reason_rows(groups: Sequence[ReasonGroup]) -> list[tuple[object, ...]]:
    now = time.time()
    return [(g.dlq, g.app, g.event_type, len(g.letters),
             format_duration(now - g.oldest_at) if g.oldest_at else "-", _short(g.reason),
             ", ".join(d.event_id or d.position for d in g.letters[:3]) + (" ..." if len(g.letters) > 3 else ""))
            for g in groups]


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


# --- the redrive ----------------------------------------------------------------------------------------


def selection(dlq: str, *, ids: str = "", event_type: str = "", reason: str = "", older_than_s: float = 0.0,
              everything: bool = False) -> Selection | None:
    """The dead letters of `dlq` the parameters choose; None when they choose none (a triage, no redrive)."""
    chosen = frozenset(i.strip() for i in ids.split(",") if i.strip())
    if not (chosen or event_type or reason or older_than_s or everything):
        return None
    if not dlq:
        raise ProcedureError("dlq: name the dead-letter topic to redrive from (the table above lists them)")
    return Selection(ids=chosen, event_type=event_type or None, older_than_s=older_than_s or None,
                     reason=reason or None, everything=everything)


def plan(dead: DeadLetters, dlq: str, chosen: Selection, max_redrives: int) -> list[RedrivePlanItem]:
    """What the redrive would do (console.sources.dead_letters: nothing is changed)."""
    try:
        return dead.plan_redrive(dlq, chosen, poison_after=max_redrives)
    except ValueError as exc:  # not a dead-letter topic of any Subscription
        raise ProcedureError(str(exc)) from None


def plan_rows(items: Sequence[RedrivePlanItem]) -> list[tuple[object, ...]]:
    return [(i.letter.position, i.letter.event_id or "-", i.letter.event_type or "-", i.action, i.reason)
            for i in items]


def plan_outcome(items: Sequence[RedrivePlanItem], dlq: str) -> Outcome:
    name = "the selection can be redriven"
    if not items:
        return Outcome(name, False, f"no waiting dead letter of {dlq} matches the selection")
    refused = [i for i in items if i.action == "refuse"]
    if refused:
        return Outcome(name, False, "; ".join(f"{i.letter.position} refused: {i.reason}" for i in refused))
    return Outcome(name, True, f"{len(items)} dead letters to redrive")


def redrive(dead: DeadLetters, items: Sequence[RedrivePlanItem]) -> tuple[list[RedriveResult], float]:
    """Carry the plan out (ledger claim, produce, ledger outcome); the results and how long it took."""
    began = time.monotonic()
    try:
        results = dead.redrive(items)
    except SourceError as exc:
        raise ProcedureError(str(exc)) from None
    return results, time.monotonic() - began


def redrive_outcome(results: Sequence[RedriveResult], seconds: float) -> Outcome:
    name = "every selected dead letter was redriven"
    bad = [r for r in results if r.outcome != "redriven"]
    if bad:
        return Outcome(name, False, "; ".join(f"{r.item.letter.position} {r.outcome}: {r.detail}" for r in bad),
                       seconds)
    return Outcome(name, True, f"{len(results)} back on their original topics", seconds)


def result_rows(results: Sequence[RedriveResult]) -> list[tuple[object, ...]]:
    return [(r.item.letter.position, r.item.letter.event_id or "-", r.outcome, r.detail) for r in results]
