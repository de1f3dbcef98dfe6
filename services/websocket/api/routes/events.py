"""The websocket service's subscription route: task-updates -> POST /events/task-updates."""

from __future__ import annotations

import logging

from services.platform.consumer import Delivery, subscription_router
from services.platform.events import TOPIC_TASK_UPDATES, TaskEventData
from services.websocket.api.deps import get_hub
from services.websocket.hub import Message

log = logging.getLogger(__name__)


def update_message(delivery: Delivery) -> Message:
    """What a client receives for one update; `id` is what it sends back as ?last_event_id=."""
    event = delivery.event
    return {"type": "event", "id": event.id, "event_type": event.type, "time": event.time.isoformat(),
            "data": event.data}


async def on_task_update(delivery: Delivery) -> None:
    if not isinstance(delivery.data, TaskEventData):
        return  # only task changes are pushed to clients
    sent = get_hub(delivery.request).publish(delivery.data.user_id, delivery.event.id, update_message(delivery))
    log.debug("update fanned out", extra={"user_id": delivery.data.user_id, "connections": sent})


router = subscription_router("websocket", {TOPIC_TASK_UPDATES: on_task_update})
