"""The worker app: assembles settings, the Dapr gateway and the task-events subscription route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.platform.app import create_app
from services.platform.consumer import sidecar_readiness
from services.platform.dapr_gateway import DaprGateway
from services.platform.logs import configure_logging
from services.worker.api.routes import events
from services.worker.config import WorkerSettings


def build_app(settings: WorkerSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    settings = settings or WorkerSettings()
    configure_logging(settings.service_name, settings.log_level)
    gateway = DaprGateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings.with_secrets(gateway.get_secret_blocking)
        try:
            yield
        finally:
            gateway.close()

    app = create_app(settings, title="Todo worker", routers=[events.router], lifespan=lifespan,
                     readiness={"dapr": sidecar_readiness(gateway)})
    app.state.gateway = gateway
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn services.worker.main:app` builds the app from the environment on first access,
    # so importing this module never reads settings as a side effect.
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(name)
