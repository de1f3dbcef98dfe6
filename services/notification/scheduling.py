"""Handling the reminders topic: keep exactly one pending Dapr Job per task, at the right time.

`todo.reminder.scheduled.v1` schedules (or, with overwrite, reschedules) `reminder-<task id>`
to fire at `remind_at`; `todo.reminder.cancelled.v1` deletes it. Events of one task arrive in
order (one partition, keyed by task), but a redelivery or a DLQ replay can bring an old event
back after a newer one: the last applied task version is kept in the state store
(`reminder-version:<task id>`) and an older event is acknowledged without touching the job.
"""

from __future__ import annotations

import json
import logging

from services.notification.jobs import due_time, job_name
from services.platform.consumer import Delivery
from services.platform.dapr_gateway import DaprCallError
from services.platform.deps import get_gateway
from services.platform.events import ReminderCancelledData, ReminderScheduledData

log = logging.getLogger(__name__)

VERSION_PREFIX = "reminder-version:"
_MISSING_JOB = {"NOT_FOUND"}


async def on_reminder_event(delivery: Delivery) -> None:
    """Subscription handler for the reminders topic."""
    data = delivery.data
    if not isinstance(data, ReminderScheduledData | ReminderCancelledData):
        return  # another type on this topic is not ours to act on
    gateway = get_gateway(delivery.request)
    key = VERSION_PREFIX + data.entity_id
    applied = await gateway.get_state(key)
    if applied is not None and json.loads(applied.value).get("version", 0) > data.task_version:
        log.info("stale reminder event ignored", extra={"task_id": data.entity_id,
                                                        "task_version": data.task_version})
        return
    name = job_name(data.entity_id)
    if isinstance(data, ReminderScheduledData):
        await gateway.schedule_job(name, due_time=due_time(data.remind_at), data={
            "task_id": data.entity_id, "task_version": data.task_version, "user_id": data.user_id,
            "title": data.title, "due_at": data.due_at.isoformat(), "remind_at": data.remind_at.isoformat(),
            "correlation_id": delivery.event.correlationid,
        })
        log.info("reminder scheduled", extra={"job": name, "remind_at": data.remind_at.isoformat()})
    else:
        try:
            await gateway.delete_job(name)
        except DaprCallError as exc:
            if str(exc.code) not in _MISSING_JOB:
                raise
        log.info("reminder cancelled", extra={"job": name, "reason": data.reason})
    await gateway.save_state(key, json.dumps({"version": data.task_version, "event_id": delivery.event.id}))
