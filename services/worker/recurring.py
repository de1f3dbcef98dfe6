"""Handling `todo.task.completed.v1`: create the next instance of a recurring series exactly once.

Exactly once despite at-least-once delivery and several replicas, in two layers:

1. The backend's `POST /internal/recurrences/next` keeps one task per (series_id,
   occurrence_index) with a unique constraint: asking twice, or from two replicas at the same
   moment, returns the same task. This alone guarantees one next instance per completion.
2. The state store remembers each occurrence already created under the deterministic key
   `recur:<series_id>:<occurrence_index>` (saved with first-write concurrency, so a second
   writer is refused rather than overwriting), so a redelivered or replayed completion is
   answered from the state store without calling the backend again. The key names the
   occurrence, not the event id: two different events about the same completion (a replay
   from the DLQ re-published under a new id) still map to one key.

Backend answers: 200/201 done; 400/404/422 can never succeed (DROP, to the DLQ); anything else
(403 wrong token, 409, 5xx, unreachable) is worth retrying and ends in the DLQ if it persists.
"""

from __future__ import annotations

import json
import logging
from typing import cast

from services.platform.consumer import Delivery, DropEvent, RetryEvent, write_once
from services.platform.dapr_gateway import DaprGateway
from services.platform.deps import get_gateway
from services.platform.events import TASK_COMPLETED, TaskEventData
from services.platform.internal_api import INTERNAL_TOKEN_HEADER, NEXT_OCCURRENCE_METHOD, NextOccurrence
from services.worker.api.deps import get_settings
from services.worker.config import WorkerSettings
from services.worker.planning import NotPlannable, plan_next

log = logging.getLogger(__name__)

STATE_PREFIX = "recur:"
_PERMANENT = {400, 404, 422}


def state_key(plan: NextOccurrence) -> str:
    return STATE_PREFIX + plan.idempotency_key


async def on_task_event(delivery: Delivery) -> None:
    """Subscription handler for task-events; every type but a completion is acknowledged as is."""
    if delivery.event.type != TASK_COMPLETED:
        return
    task = cast(TaskEventData, delivery.data).task
    if task.recurrence is None:
        return
    try:
        plan = plan_next(task)
    except NotPlannable as exc:
        raise DropEvent(str(exc)) from exc
    if plan is None:
        log.info("series ended", extra={"series_id": task.recurrence.series_id,
                                         "occurrence_index": task.recurrence.occurrence_index})
        return
    await create_next(get_gateway(delivery.request), get_settings(delivery.request), plan)


async def create_next(gateway: DaprGateway, settings: WorkerSettings, plan: NextOccurrence) -> None:
    key = state_key(plan)
    if await gateway.get_state(key) is not None:
        log.info("next instance already created", extra={"idempotency_key": plan.idempotency_key})
        return
    result = await gateway.invoke(
        settings.backend_app_id, NEXT_OCCURRENCE_METHOD, verb="POST", body=plan.model_dump(mode="json"),
        headers={INTERNAL_TOKEN_HEADER: settings.internal_api_token or ""},
    )
    if result.status in _PERMANENT:
        raise DropEvent(f"backend refused the next instance ({result.status}): {result.body[:500]!r}")
    if result.status not in (200, 201):
        raise RetryEvent(f"backend answered {result.status} for the next instance")
    task_id = (result.json() or {}).get("id")
    record = json.dumps({"task_id": task_id, "due_at": plan.due_at.isoformat()})
    if not await write_once(gateway, key, record):
        log.info("another replica recorded this occurrence first", extra={"idempotency_key": plan.idempotency_key})
    log.info("next instance created" if result.status == 201 else "next instance existed",
             extra={"idempotency_key": plan.idempotency_key, "task_id": task_id,
                    "due_at": plan.due_at.isoformat()})
