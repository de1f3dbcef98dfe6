"""The worker app: the task-events subscription route on the shared service assembly."""

from __future__ import annotations

from fastapi import FastAPI

from services.platform.service_app import build_service_app, lazy_app
from services.worker.api.routes import events
from services.worker.config import WorkerSettings


def build_app(settings: WorkerSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    return build_service_app(settings or WorkerSettings(), title="Todo worker", routers=[],
                             internal_routers=[events.router])


__getattr__ = lazy_app(globals(), build_app)
