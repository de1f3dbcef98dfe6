"""Which reminder event a task change publishes: one only when the task's reminder itself changes.

A task has a reminder while it is pending and has a due date; it fires at `due_at` minus
`reminder_offset_minutes` (none: at the due time). Comparing that time before and after a change:

- none before, one after (created with a due date, a due date added): `todo.reminder.scheduled.v1`;
- one before, another after (the due date or the offset moved): `todo.reminder.scheduled.v1`,
  which the notification service applies by overwriting the task's job;
- one before, none after: `todo.reminder.cancelled.v1`, with the reason (`deleted`, `completed`,
  or `reminder_removed` when the due date was cleared);
- the same, or none on either side: nothing. A title, description, priority, tag, time-zone or
  recurrence edit leaves the reminder as it is (the notification service reads the task's current
  title when the reminder fires), and completing or deleting a task without one cancels nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from services.backend.models import Task
from services.platform import events
from services.platform.events import CloudEvent

CancelReason = Literal["deleted", "completed", "reminder_removed"]


def remind_at(task: Task) -> datetime | None:
    """When the task's reminder fires, or None when it has none."""
    if task.status != "pending" or task.due_at is None:
        return None
    return task.due_at - timedelta(minutes=task.reminder_offset_minutes or 0)


def reminder_event(task: Task, *, action: events.TaskAction, was: datetime | None, now: datetime) -> CloudEvent | None:
    """The reminders-topic event of this change to `task` (its state after the change; for a deletion,
    its last state), given when its reminder fired before it (`was`); None when the reminder stays."""
    now_at = None if action == "deleted" else remind_at(task)
    if now_at == was:
        return None
    data: events.ReminderScheduledData | events.ReminderCancelledData
    if now_at is not None and task.due_at is not None:
        data = events.ReminderScheduledData(timestamp=now, user_id=task.owner_id, entity_id=task.id,
                                            title=task.title, due_at=task.due_at, remind_at=now_at,
                                            task_version=task.version)
        return events.build_event(source="backend", event_type=events.REMINDER_SCHEDULED, subject=task.id,
                                  data=data)
    reason: CancelReason = "reminder_removed"
    if action == "deleted" or action == "completed":
        reason = action
    data = events.ReminderCancelledData(timestamp=now, user_id=task.owner_id, entity_id=task.id, reason=reason,
                                        task_version=task.version)
    return events.build_event(source="backend", event_type=events.REMINDER_CANCELLED, subject=task.id, data=data)
