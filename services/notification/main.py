"""The notification app: the reminders subscription and the job trigger route, with a notifier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.notification.api.routes import events, jobs
from services.notification.config import NotificationSettings
from services.notification.notifiers import LogNotifier, Notifier, WebhookNotifier
from services.platform.service_app import build_service_app, lazy_app


def make_notifier(settings: NotificationSettings) -> Notifier:
    if settings.notifier == "webhook":
        return WebhookNotifier(str(settings.webhook_url), settings.webhook_secret or "",
                               timeout_s=settings.webhook_timeout_s)
    return LogNotifier()


@asynccontextmanager
async def _running(app: FastAPI, settings: NotificationSettings) -> AsyncIterator[None]:
    app.state.notifier = make_notifier(settings)
    yield


def build_app(settings: NotificationSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    return build_service_app(settings or NotificationSettings(), title="Todo notification",
                             routers=[], internal_routers=[events.router, jobs.router], running=_running)


__getattr__ = lazy_app(globals(), build_app)
