"""Handling the reminders topic: keep exactly one pending Dapr Job per task, at the right time.

`todo.reminder.scheduled.v1` schedules (or, with overwrite, reschedules) `reminder-<task id>`
to fire at `remind_at`; `todo.reminder.cancelled.v1` deletes it. Events of one task arrive in
order (one partition, keyed by task), but a redelivery or a DLQ replay can bring an event back
after a newer one. The pending job carries the task version it was scheduled for (its data's
`task_version`), so each event costs one read of the job and at most one write:

- a job of a newer version is left alone, whatever the event (a stale event never replaces or
  deletes a newer reminder: no reminder is lost);
- a job of the same version is already what a scheduled event asks for (a duplicate never
  reschedules);
- no job (none yet, fired, or cancelled): a scheduled event schedules it, a cancelled one has
  nothing to do.

With no job there is no version left to compare, so a replayed scheduled event older than a
cancellation, or than a reminder that already fired, schedules a job again. That job cannot send
a wrong or second notification: when it fires, `firing.fire` reads the task back from the backend
(deleted, completed, or a reminder time that moved: nothing is sent) and claims the delivery key
`notified:<task>@<remind_at>` first (sent already: nothing is sent). Keeping a version record
beyond the job's life (in the state store) cost a state read and a state write on every event for
that case alone.
"""

from __future__ import annotations

import logging
from typing import Any

from services.notification.jobs import due_time, job_name
from services.platform.consumer import Delivery
from services.platform.dapr_gateway import DaprCallError
from services.platform.deps import get_gateway
from services.platform.events import ReminderCancelledData, ReminderScheduledData

log = logging.getLogger(__name__)

_MISSING_JOB = {"NOT_FOUND"}


def pending_version(job: dict[str, Any] | None) -> int:
    """The task version the pending job was scheduled for; 0 when there is none (or it says none)."""
    version = (job or {}).get("task_version")
    return int(version) if isinstance(version, int | float) else 0


async def on_reminder_event(delivery: Delivery) -> None:
    """Subscription handler for the reminders topic."""
    data = delivery.data
    if not isinstance(data, ReminderScheduledData | ReminderCancelledData):
        return  # another type on this topic is not ours to act on
    gateway = get_gateway(delivery.request)
    name = job_name(data.entity_id)
    pending = await gateway.get_job(name)
    applied = pending_version(pending)
    scheduled = isinstance(data, ReminderScheduledData)
    if applied > data.task_version or (scheduled and applied == data.task_version):
        log.info("reminder event already applied", extra={"job": name, "task_version": data.task_version,
                                                          "pending_version": applied})
        return
    if isinstance(data, ReminderScheduledData):
        await gateway.schedule_job(name, due_time=due_time(data.remind_at), data={
            "task_id": data.entity_id, "task_version": data.task_version, "user_id": data.user_id,
            "title": data.title, "due_at": data.due_at.isoformat(), "remind_at": data.remind_at.isoformat(),
            "correlation_id": delivery.event.correlationid,
        })
        log.info("reminder scheduled", extra={"job": name, "remind_at": data.remind_at.isoformat()})
    elif pending is not None:
        try:
            await gateway.delete_job(name)
        except DaprCallError as exc:
            if str(exc.code) not in _MISSING_JOB:
                raise  # (a job that fired between the read and the delete is gone all the same)
        log.info("reminder cancelled", extra={"job": name, "reason": data.reason})
    else:
        log.info("reminder cancelled: no job pending", extra={"job": name, "reason": data.reason})
