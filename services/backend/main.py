"""The backend app: the task API and the internal routes on its database, and the outbox relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI

from services.backend.api.routes import dev, internal, tasks
from services.backend.config import BackendSettings
from services.backend.outbox import OutboxRelay
from services.platform.dapr_gateway import DaprGateway
from services.platform.database import Database, DatabaseSpec
from services.platform.deps import app_state
from services.platform.service_app import build_service_app, lazy_app

DATABASE = DatabaseSpec(migrations=Path(__file__).parent / "migrations", pool_size=15)


@asynccontextmanager
async def _relaying(app: FastAPI, settings: BackendSettings) -> AsyncIterator[None]:
    """The outbox relay (see services.backend.outbox), for as long as the app serves."""
    database = app_state(app, "database", Database)
    relay = OutboxRelay(
        database.sessions, app_state(app, "gateway", DaprGateway), service=settings.service_name,
        poll_interval_s=settings.relay_poll_interval_s, batch_size=settings.relay_batch_size,
        max_backoff_s=settings.relay_max_backoff_s, lease_ttl_s=settings.relay_lease_ttl_s,
        concurrency=settings.relay_concurrency, read_sessions=database.read_sessions,
    )
    relay.watch(database.sessions)
    task = asyncio.create_task(relay.run()) if settings.relay_enabled else None
    try:
        yield
    finally:
        relay.stop()
        if task is not None:
            await asyncio.wait_for(task, timeout=10)


def build_app(settings: BackendSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    settings = settings or BackendSettings()
    routers: list[APIRouter] = [tasks.router]
    if settings.is_development and settings.auth_dev_mode:
        routers.append(dev.router)
    return build_service_app(settings, title="Todo backend", routers=routers, internal_routers=[internal.router],
                             running=_relaying, database=DATABASE)


__getattr__ = lazy_app(globals(), build_app)
