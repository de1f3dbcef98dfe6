"""The backend app: assembles settings, database, auth, routes and the outbox relay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from services.backend import db
from services.backend.api.routes import dev, internal, tasks
from services.backend.config import BackendSettings
from services.backend.outbox import OutboxRelay
from services.platform.app import create_app
from services.platform.auth import TokenVerifier
from services.platform.dapr_gateway import DaprGateway
from services.platform.logs import configure_logging

log = logging.getLogger(__name__)


def build_app(settings: BackendSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    settings = settings or BackendSettings()
    configure_logging(settings.service_name, settings.log_level)
    gateway = DaprGateway(settings)
    routers: list[APIRouter] = [tasks.router, internal.router]
    if settings.is_development and settings.auth_dev_mode:
        routers.append(dev.router)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings.with_secrets(gateway.get_secret_blocking)
        engine = db.make_engine(resolved.database_url)
        if resolved.db_migrate_on_start:
            await asyncio.to_thread(db.migrate, engine)
        sessions = db.make_session_factory(engine)
        relay = OutboxRelay(
            sessions, gateway, service=resolved.service_name, poll_interval_s=resolved.relay_poll_interval_s,
            batch_size=resolved.relay_batch_size, max_backoff_s=resolved.relay_max_backoff_s,
            lease_ttl_s=resolved.relay_lease_ttl_s, concurrency=resolved.relay_concurrency,
        )
        app.state.settings = resolved
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.verifier = TokenVerifier(resolved.auth)
        app.state.relay = relay
        relay.watch(sessions)
        relay_task = asyncio.create_task(relay.run()) if resolved.relay_enabled else None
        try:
            yield
        finally:
            relay.stop()
            if relay_task is not None:
                await asyncio.wait_for(relay_task, timeout=10)
            gateway.close()
            engine.dispose()

    async def database_ready() -> None:
        await asyncio.to_thread(db.ping, app.state.engine)

    async def sidecar_ready() -> None:
        if not await gateway.ready():
            raise RuntimeError(f"Dapr sidecar not answering on port {settings.dapr_http_port}")

    app = create_app(settings, title="Todo backend", routers=routers, lifespan=lifespan,
                     readiness={"database": database_ready, "dapr": sidecar_ready})
    app.state.gateway = gateway
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn services.backend.main:app` builds the app from the environment on first access,
    # so importing this module (tests, alembic) never reads settings as a side effect.
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(name)
