"""The websocket app: the task-updates subscription, /ws, a token verifier and the in-memory hub."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from services.platform.auth import TokenVerifier
from services.platform.consumer_app import build_consumer_app, lazy_app
from services.websocket.api.routes import events, ws
from services.websocket.config import WebsocketSettings
from services.websocket.hub import Hub


async def _setup(app: FastAPI, settings: WebsocketSettings) -> Callable[[], None] | None:
    app.state.verifier = TokenVerifier(settings.auth)
    app.state.hub = Hub(buffer_size=settings.resume_buffer_size, max_users=settings.resume_max_users,
                        queue_size=settings.send_queue_size)
    return None


def build_app(settings: WebsocketSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    return build_consumer_app(settings or WebsocketSettings(), title="Todo websocket",
                              routers=[events.router, ws.router], setup=_setup)


__getattr__ = lazy_app(globals(), build_app)
