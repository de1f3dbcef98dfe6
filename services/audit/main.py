"""The audit app: settings, its database, token verification, the subscription and query routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.audit import db
from services.audit.api.routes import audit, events
from services.audit.config import AuditSettings
from services.platform.app import create_app
from services.platform.auth import TokenVerifier
from services.platform.consumer import sidecar_readiness
from services.platform.dapr_gateway import DaprGateway
from services.platform.logs import configure_logging


def build_app(settings: AuditSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    settings = settings or AuditSettings()
    configure_logging(settings.service_name, settings.log_level)
    gateway = DaprGateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings.with_secrets(gateway.get_secret_blocking)
        engine = db.make_engine(resolved.database_url)
        if resolved.db_migrate_on_start:
            await asyncio.to_thread(db.migrate, engine)
        app.state.settings = resolved
        app.state.engine = engine
        app.state.sessions = db.make_session_factory(engine)
        app.state.verifier = TokenVerifier(resolved.auth)
        try:
            yield
        finally:
            gateway.close()
            engine.dispose()

    async def database_ready() -> None:
        await asyncio.to_thread(db.ping, app.state.engine)

    app = create_app(settings, title="Todo audit", routers=[events.router, audit.router], lifespan=lifespan,
                     readiness={"database": database_ready, "dapr": sidecar_readiness(gateway)})
    app.state.gateway = gateway
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn services.audit.main:app` builds the app from the environment on first access.
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(name)
