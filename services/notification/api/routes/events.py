"""The notification service's subscription route: reminders -> POST /events/reminders."""

from __future__ import annotations

from services.notification.scheduling import on_reminder_event
from services.platform.consumer import subscription_router
from services.platform.events import TOPIC_REMINDERS

router = subscription_router("notification", {TOPIC_REMINDERS: on_reminder_event})
