"""The audit app: every topic's subscription route and the query API, on its own database."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.audit.api.routes import audit, events
from services.audit.config import AuditSettings
from services.platform.database import DatabaseSpec
from services.platform.service_app import build_service_app, lazy_app

DATABASE = DatabaseSpec(migrations=Path(__file__).parent / "migrations", pool_size=8)


def build_app(settings: AuditSettings | None = None) -> FastAPI:
    """The app for these settings (tests build theirs with their own settings)."""
    return build_service_app(settings or AuditSettings(), title="Todo audit", routers=[audit.router],
                             internal_routers=[events.router], database=DATABASE)


__getattr__ = lazy_app(globals(), build_app)
