"""What instance comes next in a recurring series: pure, so every rule and edge is testable alone.

The worker calls `plan_next` with the completed task's snapshot from a `todo.task.completed.v1`
event. The next instance's due date is the first occurrence strictly after the completed
instance's due date (not after "now"): completing late, or completing several overdue
instances, walks the series one occurrence at a time, so occurrence N is always the same date
and COUNT ends the series after exactly COUNT instances. Time zones, DST and month ends are the
shared recurrence engine's job (services/platform/recurrence.py); the backend validated the rule
with the same engine, so a rule that fails to parse here is a broken event, not a retry.
"""

from __future__ import annotations

from services.platform.events import TaskSnapshot
from services.platform.internal_api import NextOccurrence
from services.platform.recurrence import RecurrenceError, next_occurrence, parse_rrule


class NotPlannable(ValueError):
    """The snapshot cannot yield a next instance (no due date, a rule the engine refuses)."""


def plan_next(task: TaskSnapshot) -> NextOccurrence | None:
    """The instance after `task`, or None when the series has ended (COUNT, UNTIL, no more dates).

    Raises NotPlannable when the task is not a plannable recurring instance.
    """
    rec = task.recurrence
    if rec is None:
        raise NotPlannable(f"task {task.id} is not recurring")
    if task.due_at is None:
        raise NotPlannable(f"recurring task {task.id} has no due date")
    try:
        rule = parse_rrule(rec.rule)
        due = next_occurrence(rule, series_start=rec.series_start, current=task.due_at, tz=rec.timezone,
                              occurrences_so_far=rec.occurrence_index)
    except RecurrenceError as exc:
        raise NotPlannable(f"series {rec.series_id}: {exc}") from exc
    if due is None:
        return None
    return NextOccurrence(
        owner_id=task.owner_id, title=task.title, description=task.description, priority=task.priority,
        tags=list(task.tags), due_at=due, timezone=rec.timezone,
        reminder_offset_minutes=task.reminder_offset_minutes, recurrence_rule=rec.rule,
        series_id=rec.series_id, series_start=rec.series_start, occurrence_index=rec.occurrence_index + 1,
    )
