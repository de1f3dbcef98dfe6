"""Opening the SQLite files every sidecar of a sandbox shares (the state store, the jobs).

All the sidecars start at the same moment and open the same fresh files. Switching a database to
WAL takes an exclusive lock and SQLite does not always wait on its busy handler for it: one
sidecar in a few dozen starts died with "database is locked" on `PRAGMA journal_mode=WAL` (seen
in CI, reproduced with five processes opening one new file). The switch is therefore made under
an exclusive file lock beside the database, so the openers take turns; everything after it (reads,
writes, DDL) waits on SQLite's own busy handler as usual.
"""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path
from typing import Literal

BUSY_TIMEOUT_S = 10.0
# WAL with synchronous=NORMAL: no fsync per commit (0.47 -> 0.07 ms a write here), and a killed
# sidecar loses nothing; only an OS crash can lose the last commits, fine for the sandbox's stores.
SYNCHRONOUS = "NORMAL"
IsolationLevel = Literal["DEFERRED", "EXCLUSIVE", "IMMEDIATE"]  # None: autocommit


def connect_shared(path: Path, *, isolation_level: IsolationLevel | None) -> sqlite3.Connection:
    """A connection in WAL mode to a database file other processes may be opening right now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=isolation_level)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    return conn
