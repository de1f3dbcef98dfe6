"""The worker's subscription route: task-events -> POST /events/task-events."""

from __future__ import annotations

from services.platform.consumer import subscription_router
from services.platform.events import TOPIC_TASK_EVENTS
from services.worker.recurring import on_task_event

router = subscription_router("worker", {TOPIC_TASK_EVENTS: on_task_event})
