"""Engine, sessions and migrations of the backend database: tasks, outbox, idempotency keys.

The plumbing is shared (services.platform.database); this module knows this service's
migrations and pool size.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from services.platform import database
from services.platform.database import make_session_factory, ping, sqlalchemy_url

__all__ = ["MIGRATIONS_DIR", "make_engine", "make_session_factory", "migrate", "ping", "sqlalchemy_url"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    return database.make_engine(url, pool_size=10, max_overflow=20)


def migrate(engine: Engine) -> None:
    database.migrate(engine, MIGRATIONS_DIR)
