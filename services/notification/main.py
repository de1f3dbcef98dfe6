"""The notification app: settings, the Dapr gateway, the notifier, the reminders and job routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.notification.api.routes import events, jobs
from services.notification.config import NotificationSettings
from services.notification.notifiers import LogNotifier, Notifier, WebhookNotifier
from services.platform.app import create_app
from services.platform.consumer import sidecar_readiness
from services.platform.dapr_gateway import DaprGateway
from services.platform.logs import configure_logging


def make_notifier(settings: NotificationSettings) -> Notifier:
    if settings.notifier == "webhook":
        return WebhookNotifier(str(settings.webhook_url), settings.webhook_secret or "",
                               timeout_s=settings.webhook_timeout_s)
    return LogNotifier()


def build_app(settings: NotificationSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    settings = settings or NotificationSettings()
    configure_logging(settings.service_name, settings.log_level)
    gateway = DaprGateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings.with_secrets(gateway.get_secret_blocking)
        app.state.settings = resolved
        app.state.notifier = make_notifier(resolved)
        try:
            yield
        finally:
            gateway.close()

    app = create_app(settings, title="Todo notification", routers=[events.router, jobs.router],
                     lifespan=lifespan, readiness={"dapr": sidecar_readiness(gateway)})
    app.state.gateway = gateway
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn services.notification.main:app` builds the app from the environment on first access.
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(name)
