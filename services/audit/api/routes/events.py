"""The audit service's subscription routes: every topic -> POST /events/<topic>."""

from __future__ import annotations

from services.audit.recording import on_any_event
from services.platform.consumer import subscription_router
from services.platform.events import TOPICS

router = subscription_router("audit", {topic: on_any_event for topic in TOPICS})
