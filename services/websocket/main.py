"""The websocket app: settings, token verifier, the in-memory hub, the subscription and /ws routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.platform.app import create_app
from services.platform.auth import TokenVerifier
from services.platform.consumer import sidecar_readiness
from services.platform.dapr_gateway import DaprGateway
from services.platform.logs import configure_logging
from services.websocket.api.routes import events, ws
from services.websocket.config import WebsocketSettings
from services.websocket.hub import Hub


def build_app(settings: WebsocketSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    settings = settings or WebsocketSettings()
    configure_logging(settings.service_name, settings.log_level)
    gateway = DaprGateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings.with_secrets(gateway.get_secret_blocking)
        app.state.settings = resolved
        app.state.verifier = TokenVerifier(resolved.auth)
        app.state.hub = Hub(buffer_size=resolved.resume_buffer_size, max_users=resolved.resume_max_users,
                            queue_size=resolved.send_queue_size)
        try:
            yield
        finally:
            gateway.close()

    app = create_app(settings, title="Todo websocket", routers=[events.router, ws.router], lifespan=lifespan,
                     readiness={"dapr": sidecar_readiness(gateway)})
    app.state.gateway = gateway
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn services.websocket.main:app` builds the app from the environment on first access.
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(name)
