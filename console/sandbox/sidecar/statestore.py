"""The `statestore` component: SQLite (default) or PostgreSQL, with Dapr's ETag semantics.

Semantics follow components-contrib's state.postgresql, which backs `statestore` in the cluster,
in the Component's version: v2 (kustomize/base) uses a random UUID ETag per write and treats an
ETag that is not a UUID as a mismatch; v1 uses numeric ETags (there the row's xmin, here a global
counter) and rejects a non-uint32 ETag as invalid. Both: a write or delete whose ETag does not
match the stored row is an ETag mismatch; first-write without an ETag only inserts ("no item was
updated" when the key exists, a plain error that daprd's Resiliency retries); last-write without an
ETag upserts; an unknown concurrency or consistency option is refused (components-contrib
state.CheckRequestOptions); `ttlInSeconds` expires rows, and a get reports the expiry as
`ttlExpireTime` metadata (RFC 3339, UTC), as state.postgresql's Get does.
All sidecars share one database, so keys carry daprd's prefix ("<app-id>||<key>" by default).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.sandbox.sidecar.errors import ETagInvalid, ETagMismatch, StateStoreError
from console.sandbox.sidecar.sqlitefile import connect_shared

TABLE = "dapr_sandbox_state"
SEQ_TABLE = "dapr_sandbox_etag"


FIRST_WRITE, LAST_WRITE = "first-write", "last-write"
CONSISTENCIES = ("", "eventual", "strong")


@dataclass(frozen=True)
class SetOp:
    key: str
    value: bytes
    etag: str | None = None
    concurrency: str = ""  # "", first-write, last-write (anything else is refused by the store)
    ttl_seconds: int | None = None
    uuid_etags: bool = True  # state.postgresql v2; False: v1's numeric ETags
    consistency: str = ""

    @property
    def first_write(self) -> bool:
        return self.concurrency == FIRST_WRITE


@dataclass(frozen=True)
class StateEntry:
    """A get's answer: empty value and ETag when the key is missing, `expires` a Unix time or None."""

    value: bytes = b""
    etag: str = ""
    expires: float | None = None

    @property
    def metadata(self) -> dict[str, str]:
        """state.postgresql's GetResponse.Metadata: ttlExpireTime when the row expires."""
        if self.expires is None:
            return {}
        return {"ttlExpireTime": datetime.fromtimestamp(int(self.expires), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


@dataclass(frozen=True)
class DeleteOp:
    key: str
    etag: str | None = None
    uuid_etags: bool = True


def _check_options(op: SetOp) -> None:
    """components-contrib state.CheckRequestOptions (validateConcurrencyOption, validateConsistencyOption)."""
    if op.concurrency not in ("", FIRST_WRITE, LAST_WRITE):
        raise StateStoreError(f"unrecognized concurrency model '{op.concurrency}'")
    if op.consistency not in CONSISTENCIES:
        raise StateStoreError(f"unrecognized consistency model '{op.consistency}'")


def _parse_etag(etag: str, uuid_etags: bool) -> str:
    """The stored form of a caller's ETag; v1: ETagInvalid unless a uint32, v2: mismatch unless a UUID."""
    if uuid_etags:
        try:
            return str(uuid.UUID(etag))
        except ValueError:
            valid_length = len(etag) in (32, 36, 38, 41, 45)
            reason = "invalid UUID format" if valid_length else f"invalid UUID length: {len(etag)}"
            raise ETagMismatch(reason) from None  # Go's uuid.Parse wording
    if not etag.isdigit() or not 0 <= int(etag) < 2**32:
        raise ETagInvalid(f'strconv.ParseUint: parsing "{etag}": invalid syntax')
    return str(int(etag))


class SqlStateStore:
    """One table, one ETag sequence; the dialect differs only in placeholders and connection setup.

    `schema_lock` is a statement run first in the transaction that creates the tables: on PostgreSQL,
    sidecars starting together each run `CREATE TABLE IF NOT EXISTS`, and two of them racing can fail
    with a unique violation on `pg_type` (IF NOT EXISTS does not serialise concurrent creators); an
    advisory lock makes them take turns. SQLite's IMMEDIATE transactions already do.
    """

    def __init__(self, connect: Any, placeholder: str, schema_lock: str | None = None) -> None:
        self._connect = connect
        self._ph = placeholder
        self._lock = threading.Lock()
        self._conn = connect()
        with self._tx() as cur:
            if schema_lock:
                cur.execute(schema_lock)
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, value BYTEA NOT NULL, "
                        "etag TEXT NOT NULL, expires DOUBLE PRECISION)")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {SEQ_TABLE} (id INTEGER PRIMARY KEY, v BIGINT NOT NULL)")
            cur.execute(self._q(f"INSERT INTO {SEQ_TABLE} (id, v) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"))

    def _q(self, sql: str) -> str:
        return sql.replace("?", self._ph)

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            if getattr(self._conn, "broken", False) or getattr(self._conn, "closed", False):
                self._conn = self._connect()  # the database restarted: reconnect, as a pool would
            cur = self._conn.cursor()
            try:
                yield cur
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()

    def _next_etag(self, cur: Any, uuid_etags: bool) -> str:
        if uuid_etags:
            return str(uuid.uuid4())  # v2: gen_random_uuid()
        cur.execute(self._q(f"UPDATE {SEQ_TABLE} SET v = v + 1 WHERE id = 1 RETURNING v"))
        value = int(cur.fetchone()[0])
        return str(value % (2**32) or 1)  # stays a valid uint32, as postgres' xmin

    def get(self, key: str) -> StateEntry:
        with self._tx() as cur:
            cur.execute(self._q(f"SELECT value, etag, expires FROM {TABLE} "
                                "WHERE key = ? AND (expires IS NULL OR expires > ?)"), (key, time.time()))
            row = cur.fetchone()
        if row is None:
            return StateEntry()
        return StateEntry(bytes(row[0]), str(row[1]), None if row[2] is None else float(row[2]))

    def _set(self, cur: Any, op: SetOp) -> None:
        _check_options(op)
        now = time.time()
        expires = now + op.ttl_seconds if op.ttl_seconds and op.ttl_seconds > 0 else None
        expected = _parse_etag(op.etag, op.uuid_etags) if op.etag else None
        etag = self._next_etag(cur, op.uuid_etags)
        if expected is not None:
            cur.execute(self._q(f"UPDATE {TABLE} SET value = ?, etag = ?, expires = ? "
                                "WHERE key = ? AND etag = ? AND (expires IS NULL OR expires > ?)"),
                        (op.value, etag, expires, op.key, expected, now))
            if cur.rowcount != 1:
                raise ETagMismatch()
            return
        if op.first_write:
            cur.execute(self._q(f"INSERT INTO {TABLE} (key, value, etag, expires) VALUES (?, ?, ?, ?) "
                                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, etag = excluded.etag, "
                                f"expires = excluded.expires WHERE {TABLE}.expires IS NOT NULL "
                                f"AND {TABLE}.expires < ?"),
                        (op.key, op.value, etag, expires, now))
            if cur.rowcount != 1:
                raise StateStoreError("no item was updated")
            return
        cur.execute(self._q(f"INSERT INTO {TABLE} (key, value, etag, expires) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, etag = excluded.etag, "
                            "expires = excluded.expires"),
                    (op.key, op.value, etag, expires))

    def _delete(self, cur: Any, op: DeleteOp) -> None:
        if op.etag:
            expected = _parse_etag(op.etag, op.uuid_etags)
            cur.execute(self._q(f"DELETE FROM {TABLE} WHERE key = ? AND etag = ?"), (op.key, expected))
            if cur.rowcount != 1:
                raise ETagMismatch()
            return
        cur.execute(self._q(f"DELETE FROM {TABLE} WHERE key = ?"), (op.key,))

    def set(self, op: SetOp) -> None:
        with self._tx() as cur:
            self._set(cur, op)

    def delete(self, op: DeleteOp) -> None:
        with self._tx() as cur:
            self._delete(cur, op)

    def multi(self, ops: list[SetOp | DeleteOp]) -> None:
        """All or nothing, as state.postgresql's Multi runs in one database transaction."""
        with self._tx() as cur:
            for op in ops:
                if isinstance(op, SetOp):
                    self._set(cur, op)
                else:
                    self._delete(cur, op)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_store(state_dir: Path, database_url: str | None) -> SqlStateStore:
    """SQLite file `state.db` under the state dir (shared by all sidecars), or PostgreSQL."""
    if database_url:
        import psycopg

        url = database_url.replace("postgresql+psycopg://", "postgresql://")
        return SqlStateStore(lambda: psycopg.connect(url), "%s",
                             schema_lock=f"SELECT pg_advisory_xact_lock(hashtext('{TABLE}'))")
    path = state_dir / "state.db"
    return SqlStateStore(lambda: connect_shared(path, isolation_level="IMMEDIATE"), "?")
