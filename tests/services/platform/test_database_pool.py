"""The PostgreSQL pool as services/platform/database.py sets it up, against a real server: it keeps its
connections, pings only those that sat idle, and reading sessions run without a transaction."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.platform import database as database_module
from services.platform.database import Database, DatabaseSpec
from tests.utils.postgres import PostgresServer, create_database
from tests.utils.waiting import wait_until

POOL = 3


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[Database]:
    url = create_database(postgres_server, f"t_{uuid.uuid4().hex[:12]}")
    db = Database(url, DatabaseSpec(migrations=Path("unused"), pool_size=POOL))
    yield db
    db.dispose()


def server_pid(db: Database) -> int:
    with db.sessions() as session:
        return int(session.scalar(text("SELECT pg_backend_pid()")) or 0)


def kill_session(db: Database, pid: int) -> None:
    """End the server session `pid` from a connection outside the pool, and wait until it is gone."""
    with psycopg.connect(db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))

        def gone() -> bool:
            row = other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            return row is not None and row[0] == 0

        wait_until(gone, timeout=30, message=f"server session {pid} gone")


def burst(db: Database, users: int) -> set[int]:
    """`users` sessions at once (each holds its connection until all have one); their server pids."""
    pids: set[int] = set()
    barrier = threading.Barrier(min(users, POOL))

    def one() -> None:
        with db.sessions() as session:
            pids.add(int(session.scalar(text("SELECT pg_backend_pid()")) or 0))
            barrier.wait(timeout=30)

    threads = [threading.Thread(target=one) for _ in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return pids


def test_bursts_reuse_the_pooled_connections_and_never_exceed_the_pool(database: Database) -> None:
    first = burst(database, POOL * 3)  # three times the pool: the excess waits for a connection
    second = burst(database, POOL * 3)
    assert len(first) == POOL
    assert second == first  # nothing closed on return, nothing opened again


def test_a_connection_killed_while_idle_is_replaced_before_use(database: Database,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_S", 0.0)  # every connection counts as idle
    killed = server_pid(database)
    kill_session(database, killed)
    assert server_pid(database) != killed


def test_a_connection_used_moments_ago_is_not_pinged_and_one_failure_renews_the_pool(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_S", 3600.0)
    killed = server_pid(database)
    kill_session(database, killed)
    with pytest.raises(OperationalError):
        server_pid(database)  # the statement in flight when the server went away fails, as without a pool
    assert server_pid(database) != killed  # the next one is on a new connection


def test_reading_sessions_run_without_a_transaction_and_writing_ones_within_one(database: Database) -> None:
    def clock_moves(sessions: sessionmaker[Session]) -> bool:
        with sessions() as session:
            first = session.scalar(text("SELECT now()"))
            time.sleep(0.05)
            return session.scalar(text("SELECT now()")) != first  # now() is fixed within a transaction

    assert clock_moves(database.read_sessions)
    assert not clock_moves(database.sessions)
