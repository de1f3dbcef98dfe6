"""A throwaway PostgreSQL server started from the installed binaries, for tests and benchmarks.

initdb and pg_ctl refuse to run as root (and CI runs as root), so as root the cluster is
created in a directory owned by `postgres` and the binaries run through `runuser`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from console.sandbox.ports import free_port, wait_for_port


class PostgresUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"


def _bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config:
        candidate = Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
        if (candidate / "initdb").exists():
            return candidate
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).resolve().parent  # type: ignore[arg-type]
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb, pg_ctl); apt-get install postgresql")


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    bindir = _bindir()
    as_root = os.geteuid() == 0
    workdir = Path(tempfile.mkdtemp(prefix="todo-pg-"))
    data = workdir / "data"
    prefix: list[str] = []
    user = "postgres"
    if as_root:
        shutil.chown(workdir, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    else:
        import getpass

        user = getpass.getuser()
    port = free_port()
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *args], check=True, capture_output=True, text=True, cwd=workdir)
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", user, "--no-sync", "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "server.log"), "-w", "-t", "30",
            "-o", f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise PostgresUnavailable(f"{exc.cmd[len(prefix)]} failed: {exc.stderr or exc.stdout}") from exc
    try:
        if not wait_for_port("127.0.0.1", port, 15):
            raise PostgresUnavailable("PostgreSQL did not open its port")
        yield PostgresServer("127.0.0.1", port, user)
    finally:
        # Best effort: a server that is already gone must not fail the teardown.
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       check=False, capture_output=True, cwd=workdir)
        time.sleep(0.05)
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(server: PostgresServer, name: str) -> str:
    """A fresh database on the server; returns its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(host=server.host, port=server.port, user=server.user, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)
