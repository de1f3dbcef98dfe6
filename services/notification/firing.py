"""When a reminder's job fires: check the task again, then deliver once.

The job was scheduled from an event that may be old by now, so the task is read back from the
backend (`GET /internal/tasks/{id}` through Dapr service invocation) and:

- deleted (404) or completed: nothing is sent;
- its reminder moved (due date or offset changed since the job's version, so the reminder
  time differs): the newer reminder governs; its own job (same name, overwritten) sends it;
- otherwise the reminder is sent with the task's current title. A newer version that did not
  touch the reminder (a tag or priority edit) still sends: no newer reminder exists for it.

Deliveries are deduplicated per task and reminder time (`notified:<task id>@<remind_at>`), not
per task version: a scheduled event that reschedules the job to the same, already passed, time
at a newer version (replayed from the DLQ after the reminder went out) must not notify twice. The key is claimed with first-write
concurrency before sending, so a re-fired trigger or a second replica sends nothing; if sending
fails the claim is removed and the trigger fails, so the Jobs API's failure policy (by default
3 retries, 1 s apart) fires it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.notification.jobs import ReminderJob
from services.notification.notifiers import Notifier, NotifyError, Reminder
from services.platform.consumer import write_once
from services.platform.dapr_gateway import DaprGateway
from services.platform.internal_api import INTERNAL_TOKEN_HEADER, TASK_METHOD

log = logging.getLogger(__name__)

NOTIFIED_PREFIX = "notified:"


class TryLater(RuntimeError):
    """The check or the delivery failed for now; answer the trigger with an error so it fires again."""


@dataclass(frozen=True)
class Outcome:
    status: str  # "delivered" or "skipped"
    reason: str


def current_remind_at(task: dict) -> datetime | None:
    """The reminder time the task has now, from its due date and offset (None: no reminder)."""
    if task.get("status") != "pending" or not task.get("due_at"):
        return None
    due = datetime.fromisoformat(task["due_at"])
    return due - timedelta(minutes=task.get("reminder_offset_minutes") or 0)


async def fire(job: ReminderJob, *, gateway: DaprGateway, notifier: Notifier, backend_app_id: str,
               internal_token: str) -> Outcome:
    answer = await gateway.invoke(backend_app_id, TASK_METHOD.format(task_id=job.task_id), verb="GET",
                                  headers={INTERNAL_TOKEN_HEADER: internal_token})
    if answer.status == 404:
        return Outcome("skipped", "task deleted")
    if answer.status != 200:
        raise TryLater(f"backend answered {answer.status} reading task {job.task_id}")
    task = answer.json()
    if task.get("status") == "completed":
        return Outcome("skipped", "task completed")
    remind_at = current_remind_at(task)
    if remind_at is None:
        return Outcome("skipped", "reminder removed")
    if remind_at != job.remind_at:
        return Outcome("skipped", f"superseded by the reminder of version {task.get('version')}")
    reminder = Reminder(task_id=job.task_id, task_version=job.task_version, user_id=job.user_id,
                        title=str(task.get("title") or job.title), due_at=str(task["due_at"]),
                        remind_at=remind_at.isoformat())
    key = NOTIFIED_PREFIX + reminder.delivery_id
    if not await write_once(gateway, key, "claimed"):
        return Outcome("skipped", "already delivered")
    try:
        await notifier.notify(reminder)
    except NotifyError as exc:
        await gateway.delete_state(key)
        raise TryLater(str(exc)) from exc
    return Outcome("delivered", reminder.delivery_id)
