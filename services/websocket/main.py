"""The websocket app: the task-updates subscription, /ws and the in-memory hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.platform.service_app import build_service_app, lazy_app
from services.websocket.api.routes import events, ws
from services.websocket.config import WebsocketSettings
from services.websocket.hub import Hub


@asynccontextmanager
async def _running(app: FastAPI, settings: WebsocketSettings) -> AsyncIterator[None]:
    app.state.hub = Hub(buffer_size=settings.resume_buffer_size, max_users=settings.resume_max_users,
                        queue_size=settings.send_queue_size)
    yield


def build_app(settings: WebsocketSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    return build_service_app(settings or WebsocketSettings(), title="Todo websocket",
                             routers=[ws.router], internal_routers=[events.router], running=_running)


__getattr__ = lazy_app(globals(), build_app)
