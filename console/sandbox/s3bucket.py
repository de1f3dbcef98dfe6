"""The local S3's one bucket: objects in a SQLite file, their listing in memory.

tansu's `s3://` engine reads a partition's records by LISTing every key under the partition on each
fetch, PUTs a watermark (If-Match) and a batch (If-None-Match: *) on each produce, and GETs small JSON
objects (If-None-Match) all the time. So listing must not cost a scan of the store, conditional writes
must be atomic, and every acknowledged write must survive the server being killed.

- Bodies and metadata live in `<dir>/<bucket>.sqlite3` (WAL, synchronous=NORMAL): a write is durable
  once answered, across `kill -9` of any process (not across a power cut, which may lose the last
  transactions). Nothing is saved at shutdown because nothing needs to be.
- Every key, with its ETag, size, time and the `<Contents>` XML it lists as, is kept in memory in key
  order (loaded from the file at start): a LIST page is a bisect and a join.
- One thread owns a `Bucket` (the server's event loop), so a conditional write is a check then a
  write with nothing in between: atomic without locks.

ETags are the MD5 of the body in quotes, as S3's are for a single-part upload.
"""

from __future__ import annotations

import bisect
import hashlib
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

MAX_KEYS = 1000  # S3's page size, and its ceiling for max-keys
MAX_KEY_BYTES = 1024


class BucketError(Exception):
    """An S3 error: `code` and `status` as S3 answers them (e.g. NoSuchKey, 404)."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def no_such_key(key: str) -> BucketError:
    return BucketError("NoSuchKey", 404, f"The specified key does not exist: {key}")


def precondition_failed(condition: str) -> BucketError:
    return BucketError("PreconditionFailed", 412,
                       f"At least one of the pre-conditions you specified did not hold ({condition})")


def iso_time(at: float) -> str:
    """ListObjectsV2's LastModified: ISO 8601 with milliseconds, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"


@dataclass(frozen=True)
class ObjectMeta:
    etag: str  # with its quotes, as it travels in headers and XML
    size: int
    modified: float  # Unix seconds
    content_type: str
    listing: bytes = field(repr=False, default=b"")  # this object's <Contents> element, built once

    def with_listing(self, key: str) -> ObjectMeta:
        xml = (f"<Contents><Key>{escape(key)}</Key><LastModified>{iso_time(self.modified)}</LastModified>"
               f"<ETag>{escape(self.etag)}</ETag><Size>{self.size}</Size>"
               "<StorageClass>STANDARD</StorageClass></Contents>")
        return ObjectMeta(self.etag, self.size, self.modified, self.content_type, xml.encode())


@dataclass(frozen=True)
class ListPage:
    keys: list[str]
    listing: list[bytes]  # the keys' <Contents> elements, in the same order
    common_prefixes: list[str]
    truncated: bool
    last: str | None  # the last key or common prefix returned: where the next page starts after


def check_key(key: str) -> None:
    """Refuse what S3 refuses (an empty or too long key), and the segments object_store never writes
    and a path-style URL cannot carry unchanged ('.', '..', empty)."""
    if not key:
        raise BucketError("InvalidArgument", 400, "an object key cannot be empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise BucketError("KeyTooLongError", 400, f"Your key is too long (over {MAX_KEY_BYTES} bytes)")
    if any(part in ("", ".", "..") for part in key.split("/")[:-1]) or key.split("/")[-1] in (".", ".."):
        raise BucketError("InvalidArgument", 400, f"this local S3 does not store keys with empty, '.' or '..' "
                                                  f"segments: {key!r}")


class Bucket:
    """One bucket in `<directory>/<name>.sqlite3`. Not thread-safe: one owner thread (see the module)."""

    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.path = directory / f"{name}.sqlite3"
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, etag TEXT NOT NULL, size INTEGER NOT NULL, "
            "modified REAL NOT NULL, content_type TEXT NOT NULL, body BLOB NOT NULL)")
        # Every key in order, and beside it its <Contents> element: a page without a delimiter is two
        # bisects and a slice (tansu lists whole partitions on every fetch; a Python loop per key was
        # 1.7 ms for 800 keys).
        self._keys: list[str] = []
        self._rows: list[bytes] = []
        self._meta: dict[str, ObjectMeta] = {}
        for key, etag, size, modified, content_type in self._db.execute(
                "SELECT key, etag, size, modified, content_type FROM objects ORDER BY key"):
            meta = ObjectMeta(etag, size, modified, content_type).with_listing(key)
            self._keys.append(key)
            self._rows.append(meta.listing)
            self._meta[key] = meta

    def __len__(self) -> int:
        return len(self._keys)

    def close(self) -> None:
        self._db.close()

    # --- objects -------------------------------------------------------------------------------------

    def head(self, key: str) -> ObjectMeta | None:
        return self._meta.get(key)

    def get(self, key: str) -> tuple[ObjectMeta, bytes]:
        meta = self._meta.get(key)
        if meta is None:
            raise no_such_key(key)
        row = self._db.execute("SELECT body FROM objects WHERE key = ?", (key,)).fetchone()
        return meta, bytes(row[0])

    def put(self, key: str, body: bytes, content_type: str, *, if_match: str | None = None,
            if_none_match: bool = False) -> ObjectMeta:
        """Store `body`; with `if_none_match` only if the key is new, with `if_match` only if its
        current ETag is that one (S3's conditional writes: 412, or 404 for If-Match on no object)."""
        check_key(key)
        current = self._meta.get(key)
        if if_none_match and current is not None:
            raise precondition_failed("If-None-Match: the object exists")
        if if_match is not None:
            if current is None:
                raise no_such_key(key)
            if not etag_matches(if_match, current.etag):
                raise precondition_failed("If-Match: the object changed")
        meta = ObjectMeta(f'"{hashlib.md5(body).hexdigest()}"', len(body), time.time(),  # noqa: S324 (S3's ETag)
                          content_type).with_listing(key)
        self._db.execute("INSERT OR REPLACE INTO objects (key, etag, size, modified, content_type, body) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (key, meta.etag, meta.size, meta.modified, content_type, body))
        at = bisect.bisect_left(self._keys, key)
        if current is None:
            self._keys.insert(at, key)
            self._rows.insert(at, meta.listing)
        else:
            self._rows[at] = meta.listing
        self._meta[key] = meta
        return meta

    def delete(self, key: str) -> None:
        """Remove `key`; removing a key that is not there succeeds, as in S3."""
        if self._meta.pop(key, None) is None:
            return
        self._db.execute("DELETE FROM objects WHERE key = ?", (key,))
        at = bisect.bisect_left(self._keys, key)
        del self._keys[at]
        del self._rows[at]

    # --- listing -------------------------------------------------------------------------------------

    def list(self, prefix: str = "", *, after: str | None = None, delimiter: str | None = None,
             max_keys: int = MAX_KEYS) -> ListPage:
        """One ListObjectsV2 page: keys under `prefix` past `after`, in key order, with keys sharing a
        segment up to `delimiter` rolled into one common prefix (which counts as one entry)."""
        i = bisect.bisect_left(self._keys, prefix)
        if after is not None and after >= prefix:
            i = bisect.bisect_right(self._keys, after)
            if delimiter and after.endswith(delimiter):  # resuming after a common prefix: skip its keys
                i = self._end_of(after, i)
        if not delimiter:
            end = self._end_of(prefix, i)
            stop = min(end, i + max_keys)
            page = self._keys[i:stop]
            return ListPage(page, self._rows[i:stop], [], stop < end, page[-1] if page else None)
        keys: list[str] = []
        rows: list[bytes] = []
        prefixes: list[str] = []
        last = None
        while i < len(self._keys) and self._keys[i].startswith(prefix):
            if len(keys) + len(prefixes) >= max_keys:
                return ListPage(keys, rows, prefixes, True, last)
            key = self._keys[i]
            cut = key.find(delimiter, len(prefix))
            if cut < 0:
                keys.append(key)
                rows.append(self._rows[i])
                last = key
                i += 1
                continue
            common = key[: cut + len(delimiter)]
            prefixes.append(common)
            last = common
            i = self._end_of(common, i)
        return ListPage(keys, rows, prefixes, False, last)

    def _end_of(self, prefix: str, start: int) -> int:
        """The index past the last key at or after `start` that begins with `prefix`."""
        lo, hi = start, len(self._keys)
        while lo < hi:  # keys beginning with `prefix` form one run: bisect for its end
            mid = (lo + hi) // 2
            if self._keys[mid].startswith(prefix) or self._keys[mid] < prefix:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def meta(self, key: str) -> ObjectMeta:
        return self._meta[key]


def etag_matches(condition: str, etag: str) -> bool:
    """An If-Match / If-None-Match header against an ETag: `*`, or a list of (weak or strong) tags."""
    if condition.strip() == "*":
        return True
    wanted = {tag.strip().removeprefix("W/") for tag in condition.split(",")}
    return etag in wanted or etag.strip('"') in wanted
