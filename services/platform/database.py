"""The database of a service that owns one (backend, audit): engine, sessions, migrations, readiness.

PostgreSQL in the cluster, SQLite as the embedded default: both go through here, so URL
handling, connection settings and migrations behave the same in every service. A service
names only its migrations folder and its pool size.

Migrations run at start-up, once however many replicas start together (the backend's HPA runs
up to three): the upgrade holds a PostgreSQL advisory lock, so the first replica migrates while
the others wait for it and then find the schema at head. Not an init container: the database
URL is a secret read through the Dapr secret store, and daprd is not running yet while init
containers run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from weakref import WeakKeyDictionary

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from services.platform.settings import ServiceSettings

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key (any bigint; advisory locks are per database) held while migrating.
MIGRATION_LOCK_KEY = 0x70D0_0001


class DatabaseSettings(ServiceSettings):
    """The settings of a service with a database; each service names its secret and default file."""

    database_url: str = "sqlite:///./todo.db"
    db_migrate_on_start: bool = True


@dataclass(frozen=True)
class DatabaseSpec:
    """What differs between the services' databases: their migrations and their pool size.

    On PostgreSQL the pool keeps every connection it opens, up to `pool_size`, and a request beyond
    that waits for one to come back (`max_overflow` 0). Overflow connections are closed as soon as
    they are returned: with the backend's old 10 + 20, a burst of 100 users opened 100 sessions in
    30 s, each a forked server process, and each new connection prepared its statements again.
    Waiting a few milliseconds for a pooled connection costs less than a fork, and the pool size is
    the most a replica holds (the cluster's max_connections is 60, for up to three backend replicas).
    """

    migrations: Path
    pool_size: int = 10
    max_overflow: int = 0


def sqlalchemy_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` URLs and use the psycopg 3 driver."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if sep and scheme in ("postgres", "postgresql") else url


# SQLite has one writer at a time, and its busy handler makes waiting writers sleep-poll while
# they hold a pooled connection: under 100 concurrent users the writers convoyed and the pool
# ran dry. In the embedded (SQLite) mode writers therefore queue on a plain lock instead.
_SQLITE_WRITE_LOCKS: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()
# Enough connections for every worker thread (anyio's default is 40): readers never wait.
SQLITE_POOL_SIZE = 48


# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 2.0
_CHECKED_IN_AT = "checked_in_at"


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 0) -> Engine:
    url = sqlalchemy_url(url)
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        _ping_when_idle(engine)
        return engine
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
    event.listen(engine, "connect", _sqlite_pragmas)
    _SQLITE_WRITE_LOCKS[engine] = threading.Lock()
    return engine


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    # synchronous=NORMAL is SQLite's advice for WAL: no fsync per commit, still no corruption, and
    # an application crash loses nothing (a power cut may lose the last commits: fine for the
    # embedded default; production runs PostgreSQL). FULL made commits the backend's hot spot.
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        dbapi_conn.execute(f"PRAGMA {pragma}")


def _note_checkin(_dbapi_conn: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_when_idle(engine: Engine) -> None:
    """pool_pre_ping, but only for a connection that has sat idle: one that worked moments ago is used as is.

    pool_pre_ping pings on every checkout: a round trip per request (a sixth of a request's time in
    the backend under load, profiled), waiting for the server and then for the GIL. A connection that
    did work less than PING_AFTER_IDLE_S ago is as likely alive as one that just answered a ping. If
    the server went away meanwhile (a CloudNativePG switchover), the first statement on it fails as
    it would have without a pool, and SQLAlchemy then invalidates the whole pool: every other
    connection is replaced on its next checkout, so one switchover costs the requests in flight,
    not one per pooled connection. Raising DisconnectionError makes the pool retry with a new one.
    """
    dialect = engine.dialect
    error = dialect.loaded_dbapi.Error

    def checkout(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        last_used = record.info.get(_CHECKED_IN_AT)
        if last_used is not None and time.monotonic() - last_used < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except error as exc:
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc

    event.listen(engine, "connect", _note_checkin)  # a connection just opened needs no ping either
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", checkout)


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


def _autocommit(engine: Engine) -> Engine:
    """The engine (same pool) for sessions that only read: on PostgreSQL in autocommit.

    At READ COMMITTED each statement sees its own snapshot even inside a transaction, so a reading
    request's BEGIN and ROLLBACK are two round trips that buy nothing. SQLite has no round trips
    to save, and its reads stay as they were."""
    return engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine


def hold_migration_lock(connection: Connection) -> None:
    """On PostgreSQL, wait for and take the migration lock until this transaction ends.

    Transaction-scoped: released by the commit that makes the new schema visible, or by the
    rollback of a failed upgrade, never left behind by a crashed replica (its session ends).
    """
    if connection.dialect.name != "postgresql":
        return  # SQLite is the embedded, single-process mode
    if not connection.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}):
        log.info("another replica is migrating the database; waiting for it")
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


class Database:
    """One service's database: the engine, its session factory and its migrations."""

    def __init__(self, url: str, spec: DatabaseSpec) -> None:
        self.spec = spec
        self.engine = make_engine(url, pool_size=spec.pool_size, max_overflow=spec.max_overflow)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(_autocommit(self.engine), expire_on_commit=False)

    def migrate(self) -> bool:
        """Bring the schema to the newest revision; True if this call changed it.

        Under the migration lock, and only if the schema is behind: of several replicas
        starting at once, one upgrades and the others find the schema at head.
        """
        config = Config()
        config.set_main_option("script_location", str(self.spec.migrations))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self.engine.begin() as connection:
            hold_migration_lock(connection)
            current = MigrationContext.configure(connection).get_current_revision()
            if current == head:
                log.info("database schema is current", extra={"revision": head})
                return False
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        log.info("database schema migrated", extra={"from_revision": current, "to_revision": head})
        return True

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def run_migrations(target_metadata: MetaData, default_url: str) -> None:
    """The body of a service's Alembic env.py.

    On the connection `Database.migrate` hands over, or, for `alembic -c services/<name>/alembic.ini
    upgrade head` by hand, on DATABASE_URL, under the migration lock like a starting replica.
    """
    given: Connection | None = context.config.attributes.get("connection")
    if given is not None:
        _run_migrations(given, target_metadata)
        return
    engine = create_engine(sqlalchemy_url(os.environ.get("DATABASE_URL", default_url)))
    with engine.begin() as connection:
        _run_migrations(connection, target_metadata)
    engine.dispose()


def _run_migrations(connection: Connection, target_metadata: MetaData) -> None:
    hold_migration_lock(connection)
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
