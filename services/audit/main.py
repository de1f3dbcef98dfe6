"""The audit app: every topic's subscription route and the query API, on its own database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI

from services.audit import db
from services.audit.api.routes import audit, events
from services.audit.config import AuditSettings
from services.platform.auth import TokenVerifier
from services.platform.consumer_app import build_consumer_app, lazy_app


async def _setup(app: FastAPI, settings: AuditSettings) -> Callable[[], None] | None:
    engine = db.make_engine(settings.database_url)
    if settings.db_migrate_on_start:
        await asyncio.to_thread(db.migrate, engine)
    app.state.engine = engine
    app.state.sessions = db.make_session_factory(engine)
    app.state.verifier = TokenVerifier(settings.auth)
    return engine.dispose


async def _database_ready(app: FastAPI) -> None:
    await asyncio.to_thread(db.ping, app.state.engine)


def build_app(settings: AuditSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    return build_consumer_app(settings or AuditSettings(), title="Todo audit", routers=[events.router, audit.router],
                              setup=_setup, readiness={"database": _database_ready})


__getattr__ = lazy_app(globals(), build_app)
