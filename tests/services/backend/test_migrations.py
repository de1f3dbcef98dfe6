"""The Alembic migrations: exactly the schema the models describe, on both databases; run once when
several replicas start together; existing rows carried over by 0002."""

from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text

from services.backend.main import DATABASE
from services.backend.models import Base
from services.platform.database import MIGRATION_LOCK_KEY, Database
from tests.utils.postgres import PostgresServer, create_database
from tests.utils.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]


def test_migrations_match_the_models(database_url: str) -> None:
    database = Database(database_url, DATABASE)
    assert database.migrate() is True
    assert database.migrate() is False  # at head: nothing to do
    with database.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    database.dispose()
    assert diff == []


# A starting replica, as a process of its own: imports, says it is ready, waits for the go, migrates.
STARTER = """
import sys
from pathlib import Path
from services.platform.database import Database, DatabaseSpec
database = Database(sys.argv[1], DatabaseSpec(Path(sys.argv[2])))
print("ready", flush=True)
sys.stdin.readline()
print("migrated" if database.migrate() else "current", flush=True)
"""


@pytest.mark.postgres
def test_replicas_starting_together_migrate_once(postgres_server: PostgresServer) -> None:
    url = create_database(postgres_server, f"t_{uuid.uuid4().hex[:12]}")
    starters = [subprocess.Popen([sys.executable, "-c", STARTER, url, str(DATABASE.migrations)], cwd=REPO, text=True, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    try:
        for starter in starters:
            assert starter.stdout is not None
            assert starter.stdout.readline().strip() == "ready"
        for starter in starters:  # all at once, as replicas the HPA adds together
            assert starter.stdin is not None
            starter.stdin.write("go\n")
            starter.stdin.flush()
        outcomes = [starter.communicate(timeout=60) for starter in starters]
    finally:
        for starter in starters:
            starter.kill()
    # Without the lock the losers crash (duplicate CREATE TABLE, or tables missing mid-upgrade).
    assert [s.returncode for s in starters] == [0, 0, 0], [err[-2000:] for _, err in outcomes]
    assert sorted(out.strip() for out, _ in outcomes) == ["current", "current", "migrated"]
    database = Database(url, DATABASE)
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    database.dispose()


@pytest.mark.postgres
def test_a_starting_replica_waits_for_the_one_migrating(postgres_server: PostgresServer) -> None:
    url = create_database(postgres_server, f"t_{uuid.uuid4().hex[:12]}")
    migrating, starter = Database(url, DATABASE), Database(url, DATABASE)
    try:
        with migrating.engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            with ThreadPoolExecutor(1) as pool:
                result = pool.submit(starter.migrate)

                def waiting() -> bool:
                    return bool(holder.scalar(text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                        "AND objid = :key"), {"key": MIGRATION_LOCK_KEY}))

                wait_until(waiting, 15, 0.05, "the starter to wait for the migration lock")
                assert not result.done()
                holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                holder.commit()
                assert result.result(timeout=30) is True
    finally:
        migrating.dispose()
        starter.dispose()


def test_0002_carries_over_pending_events_and_tags(database_url: str) -> None:
    """An outbox row written before 0002 gets its trace ids from its payload; tags stay readable."""
    database = Database(database_url, DATABASE)
    config = Config()
    config.set_main_option("script_location", str(DATABASE.migrations))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text(
            "INSERT INTO outbox_events (event_id, topic, event_type, aggregate_id, payload, created_at, attempts) "
            "VALUES ('e-1', 'task-events', 'todo.task.created.v1', 't-1', "
            "'{\"id\":\"e-1\",\"correlationid\":\"req-7\",\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-"
            "00f067aa0ba902b7-01\"}', CURRENT_TIMESTAMP, 0)"))
        connection.execute(text(
            "INSERT INTO tasks (id, owner_id, title, description, priority, tags, status, timezone, version, "
            "created_at, updated_at) VALUES ('t-1', 'alice', 'x', '', 'low', '[\"home\", \"garden\"]', 'pending', "
            "'UTC', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    assert database.migrate() is True
    with database.engine.connect() as connection:
        row = connection.execute(text("SELECT correlation_id, traceparent FROM outbox_events")).one()
        tags = connection.scalar(text("SELECT tags FROM tasks"))
    database.dispose()
    assert tuple(row) == ("req-7", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert tags in (["home", "garden"], '["home", "garden"]')  # JSONB comes back parsed, SQLite's JSON as text
