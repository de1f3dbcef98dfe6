"""The audit service's subscription routes: every topic -> POST /events/<topic>, bulk or not."""

from __future__ import annotations

from services.audit.recording import on_any_event, on_event_batch
from services.platform.consumer import subscription_router
from services.platform.events import TOPICS

router = subscription_router("audit", dict.fromkeys(TOPICS, on_any_event),
                             batch_handlers=dict.fromkeys(TOPICS, on_event_batch))
