"""Database plumbing shared by the services that own a database (backend, audit).

PostgreSQL in the cluster, SQLite as the embedded default: both go through here, so URL
handling, connection settings and migrations behave the same in every service.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry


def sqlalchemy_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` URLs and use the psycopg 3 driver."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if sep and scheme in ("postgres", "postgresql") else url


# SQLite has one writer at a time, and its busy handler makes waiting writers sleep-poll while
# they hold a pooled connection: under 100 concurrent users the writers convoyed and the pool
# ran dry. In the embedded (SQLite) mode writers therefore queue on a plain lock instead.
_SQLITE_WRITE_LOCKS: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    url = sqlalchemy_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)
    # Enough connections for every worker thread (anyio's default is 40): readers never wait.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
    event.listen(engine, "connect", _sqlite_pragmas)
    _SQLITE_WRITE_LOCKS[engine] = threading.Lock()
    return engine


SQLITE_POOL_SIZE = 48


@contextmanager
def write_transaction(sessions: sessionmaker[Session] | Session) -> Iterator[Session]:
    """A transaction that writes: committed on success, rolled back on error, in this thread.

    Accepts a session factory (a new session) or a request's session. On SQLite it first takes
    the engine's writer lock, so writers queue fairly instead of polling SQLite's busy handler.
    """
    session = sessions() if isinstance(sessions, sessionmaker) else sessions
    bind = session.get_bind()
    lock = _SQLITE_WRITE_LOCKS.get(bind.engine if isinstance(bind, Connection) else bind)
    try:
        with lock or nullcontext(), session.begin():
            yield session
    finally:
        if isinstance(sessions, sessionmaker):
            session.close()


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    # synchronous=NORMAL is SQLite's advice for WAL: no fsync per commit, still no corruption, and
    # an application crash loses nothing (a power cut may lose the last commits: fine for the
    # embedded default; production runs PostgreSQL). FULL made commits the backend's hot spot.
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        dbapi_conn.execute(f"PRAGMA {pragma}")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine, migrations_dir: Path) -> None:
    """Bring the schema to the newest Alembic revision in `migrations_dir` (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
