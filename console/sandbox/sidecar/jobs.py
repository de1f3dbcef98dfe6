"""The Jobs API: schedule, persist and fire jobs on the app, as daprd + the Dapr Scheduler do.

Validation and errors follow dapr/dapr pkg/api/universal/jobs.go and go-etcd-cron (the
Scheduler's engine): name/schedule presence is checked by daprd ("Name is empty", "Schedule is
empty"); the rest ("job failed validation: ...", "job already exists: '...'") comes back from
the Scheduler inside daprd's "failed to schedule job due to: rpc error: ..." wrapper.
Timing follows go-etcd-cron: the first tick is the dueTime if given (a dueTime in the past fires
immediately), else the schedule's next time after creation; later ticks follow the schedule after
the previous tick; `repeats` caps the count; `ttl` ends a scheduled job. A failed trigger is
retried by the failure policy (default: constant 1s, 3 retries). Jobs live in SQLite under
--state-dir, so they survive sidecar restarts; ticks missed while stopped fire on start.
Docs: https://docs.dapr.io/reference/api/jobs_api/
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from dapr.proto.runtime.v1 import jobs_pb2

from console.sandbox.sidecar import cron, errors
from console.sandbox.sidecar.resiliency import parse_duration
from console.sandbox.sidecar.sqlitefile import connect_shared

log = logging.getLogger(__name__)

_ISO = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DEFAULT_RETRY_INTERVAL_S = 1.0
DEFAULT_MAX_RETRIES = 3

# fire(name, job) -> True when the app accepted the trigger (2xx)
Trigger = Callable[[str, jobs_pb2.Job], bool]


def _point_in_time(text: str, now: datetime, what: str) -> datetime:
    """go-etcd-cron parsePointInTime: RFC 3339, Go duration, or ISO 8601 duration (no repeats)."""
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is not None:
            return when
    except ValueError:
        pass
    try:
        return now + timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    if text.startswith("R"):
        raise ValueError("repeats not supported for due time")
    m = _ISO.match(text)
    if not m or text in ("P", "PT"):
        raise ValueError(f"{what} format not recognized")
    y, mo, w, d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    month = now.month - 1 + int(mo)
    year = now.year + int(y) + month // 12
    base = now.replace(year=year, month=month % 12 + 1)
    return base + timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)


def _check_name(full_name: str) -> None:
    sanitized = full_name
    for ch in "_:- ":
        sanitized = sanitized.replace(ch, "")
    for segment in sanitized.lower().split("||"):
        if not segment or len(segment) > 253 or not _DNS1123.match(segment):
            raise ValueError(
                f"job name is invalid {sanitized!r}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")


class JobStore:
    """Persistent job rows for one app-id, plus the thread that fires them."""

    def __init__(self, path: Path, app_id: str, namespace: str, trigger: Trigger) -> None:
        self.app_id, self.namespace, self._trigger = app_id, namespace, trigger
        self._db = connect_shared(path, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS jobs (app_id TEXT, name TEXT, job BLOB, begin_at REAL, "
                         "start_kind TEXT, expires REAL, count INTEGER, last REAL, next_at REAL, "
                         "PRIMARY KEY (app_id, name))")
        self._add_next_at()
        self._db.execute("CREATE INDEX IF NOT EXISTS jobs_next_at ON jobs (app_id, next_at)")
        self._cond = threading.Condition()
        self._in_flight: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)

    def _add_next_at(self) -> None:
        """Jobs stored before `next_at` existed (a sandbox directory kept from an older version)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "next_at" in columns:
            return
        self._db.execute("ALTER TABLE jobs ADD COLUMN next_at REAL")
        rows = self._db.execute("SELECT app_id, name, job, begin_at, start_kind, expires, count, last FROM jobs")
        for app_id, name, blob, begin, kind, expires, count, last in rows.fetchall():
            job = jobs_pb2.Job()
            job.ParseFromString(blob)
            self._db.execute("UPDATE jobs SET next_at = ? WHERE app_id = ? AND name = ?",
                             (self.next_tick(job, begin, kind, expires, count, last), app_id, name))

    # ---- API -----------------------------------------------------------------------------------
    def _meta(self) -> tuple[str, str]:
        return self.app_id, self.namespace

    def schedule(self, job: jobs_pb2.Job | None, overwrite: bool) -> None:
        """Validate and store a job; DaprError as daprd returns it."""
        if job is None:
            raise errors.job_empty("Job", *self._meta(), "DAPR_SCHEDULER_EMPTY")
        if not job.name:
            raise errors.job_empty("Name", *self._meta(), "DAPR_SCHEDULER_JOB_NAME_EMPTY")
        if not job.HasField("schedule") and not job.HasField("due_time"):
            raise errors.job_empty("Schedule", *self._meta(), "DAPR_SCHEDULER_SCHEDULE_EMPTY")
        full_name = f"app||{self.namespace}||{self.app_id}||{job.name}"
        try:
            _check_name(full_name)
            begin, kind, expires = self._validate(job)
        except ValueError as exc:
            detail = str(exc) if str(exc).startswith("job name") else f"job failed validation: {exc}"
            raise errors.job_schedule(*self._meta(), grpc.StatusCode.UNKNOWN, detail) from None
        expires_at = expires.timestamp() if expires else None
        first = self.next_tick(job, begin.timestamp(), kind, expires_at, 0, None)
        row = (self.app_id, job.name, job.SerializeToString(), begin.timestamp(), kind, expires_at, first)
        insert = ("INTO jobs (app_id, name, job, begin_at, start_kind, expires, count, last, next_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?)")
        with self._cond:
            if overwrite:
                self._db.execute("INSERT OR REPLACE " + insert, row)
            else:
                cur = self._db.execute("INSERT OR IGNORE " + insert, row)
                if cur.rowcount != 1:
                    raise errors.job_schedule(*self._meta(), grpc.StatusCode.ALREADY_EXISTS,
                                              f"job already exists: '{full_name}'")
            self._cond.notify_all()
        log.info("job scheduled", extra={"job": job.name, "overwrite": overwrite})

    @staticmethod
    def _validate(job: jobs_pb2.Job) -> tuple[datetime, str, datetime | None]:
        """go-etcd-cron's Builder.Parse checks, in its order."""
        has_schedule = job.HasField("schedule")
        if not has_schedule and job.HasField("repeats") and job.repeats > 1:
            raise ValueError("job must have a schedule to repeat")
        if job.HasField("repeats") and job.repeats < 1:
            raise ValueError("defined repeats must be greater than 0")
        if not has_schedule and job.HasField("ttl"):
            raise ValueError("job must have a schedule to have a ttl")
        if has_schedule:
            cron.parse(job.schedule)  # CronError is a ValueError with robfig's message
        now = datetime.now(UTC)
        begin, kind = now, "start"
        if job.HasField("due_time"):
            begin, kind = _point_in_time(job.due_time, now, "due time"), "due"
        expires = None
        if job.HasField("ttl"):
            try:
                expires = _point_in_time(job.ttl, begin if kind == "due" else now, "ttl")
            except ValueError:
                raise ValueError("ttl format not recognized") from None
            if kind == "due" and begin > expires:
                raise ValueError("ttl must be greater than due time")
        return begin, kind, expires

    def get(self, name: str) -> jobs_pb2.Job:
        if not name:
            raise errors.job_empty("Name", *self._meta(), "DAPR_SCHEDULER_JOB_NAME_EMPTY")
        with self._cond:
            row = self._db.execute("SELECT job FROM jobs WHERE app_id = ? AND name = ?", (self.app_id, name)).fetchone()
        if row is None:
            raise errors.job_get(*self._meta(), errors.rpc_error_text(grpc.StatusCode.NOT_FOUND,
                                                                      f"job not found: {name}"))
        job = jobs_pb2.Job()
        job.ParseFromString(row[0])
        return job

    def delete(self, name: str) -> None:
        if not name:
            raise errors.job_empty("Name", *self._meta(), "DAPR_SCHEDULER_JOB_NAME_EMPTY")
        with self._cond:
            self._db.execute("DELETE FROM jobs WHERE app_id = ? AND name = ?", (self.app_id, name))
            self._cond.notify_all()

    def delete_prefix(self, prefix: str) -> None:
        with self._cond:
            for (name,) in self._db.execute("SELECT name FROM jobs WHERE app_id = ?", (self.app_id,)).fetchall():
                if name.startswith(prefix):
                    self._db.execute("DELETE FROM jobs WHERE app_id = ? AND name = ?", (self.app_id, name))
            self._cond.notify_all()

    def list_jobs(self) -> list[jobs_pb2.Job]:
        with self._cond:
            rows = self._db.execute("SELECT job FROM jobs WHERE app_id = ? ORDER BY name", (self.app_id,)).fetchall()
        out = []
        for (blob,) in rows:
            job = jobs_pb2.Job()
            job.ParseFromString(blob)
            out.append(job)
        return out

    # ---- firing --------------------------------------------------------------------------------
    @staticmethod
    def next_tick(job: jobs_pb2.Job, begin: float, kind: str, expires: float | None,
                  count: int, last: float | None) -> float | None:
        """go-etcd-cron's oneshot/repeats Next(): None when the job is finished."""
        if not job.HasField("schedule"):
            return begin if count < 1 else None
        if job.HasField("repeats") and count >= job.repeats:
            return None
        sched = cron.parse(job.schedule)
        if last is None:
            if kind == "due":
                return begin
            return sched.next_after(datetime.fromtimestamp(begin, UTC)).timestamp()
        nxt = sched.next_after(datetime.fromtimestamp(last, UTC)).timestamp()
        if expires is not None and nxt > expires:
            return None
        return nxt

    def _due(self) -> tuple[list[tuple[str, jobs_pb2.Job, float]], float | None]:
        """Jobs due now, and the earliest future tick (to sleep until).

        Reads only what is due, by the indexed `next_at`: the loop runs on every schedule call, and
        scanning (and parsing) every stored job each time made scheduling O(n) per job, which with
        a thousand pending reminders cost the notification sidecar a fifth of a core.
        """
        now = time.time()
        self._db.execute("DELETE FROM jobs WHERE app_id = ? AND next_at IS NULL", (self.app_id,))  # finished
        rows = self._db.execute("SELECT name, job, next_at FROM jobs WHERE app_id = ? AND next_at <= ? "
                                "ORDER BY next_at", (self.app_id, now)).fetchall()
        due = []
        for name, blob, tick in rows:
            if name in self._in_flight:
                continue
            job = jobs_pb2.Job()
            job.ParseFromString(blob)
            due.append((name, job, tick))
        (earliest,) = self._db.execute("SELECT MIN(next_at) FROM jobs WHERE app_id = ? AND next_at > ?",
                                       (self.app_id, now)).fetchone()
        return due, earliest

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                due, earliest = self._due()
                for name, job, tick in due:
                    self._in_flight.add(name)
                    threading.Thread(target=self._fire, args=(name, job, tick), daemon=True,
                                     name=f"job-{name}").start()
                if not due:
                    wait = None if earliest is None else max(0.0, earliest - time.time())
                    self._cond.wait(timeout=wait if wait is not None else 5.0)

    def _fire(self, name: str, job: jobs_pb2.Job, tick: float) -> None:
        """Trigger the app, retrying per the job's failure policy, then record the tick."""
        policy = job.failure_policy if job.HasField("failure_policy") else None
        if policy is not None and policy.HasField("drop"):
            retries, interval = 0, 0.0
        elif policy is not None and policy.HasField("constant"):
            c = policy.constant
            retries = c.max_retries if c.HasField("max_retries") else -1
            interval = c.interval.ToTimedelta().total_seconds() if c.HasField("interval") else DEFAULT_RETRY_INTERVAL_S
        else:
            retries, interval = DEFAULT_MAX_RETRIES, DEFAULT_RETRY_INTERVAL_S
        attempt = 0
        try:
            while not self._stop.is_set():
                attempt += 1
                if self._trigger(name, job):
                    break
                if retries >= 0 and attempt > retries:
                    log.warning("job trigger failed; failure policy exhausted", extra={"job": name, "attempts": attempt})
                    break
                if self._stop.wait(interval):
                    return
            else:
                return
            with self._cond:
                if self._stop.is_set():
                    return  # shutting down: the tick is not recorded and fires again on the next start
                self._record_tick(name, job, tick)
        finally:
            with self._cond:
                self._in_flight.discard(name)
                self._cond.notify_all()

    def _record_tick(self, name: str, job: jobs_pb2.Job, tick: float) -> None:
        """Count the tick and store the next one; unless the job was replaced meanwhile."""
        blob = job.SerializeToString()
        row = self._db.execute("SELECT begin_at, start_kind, expires, count FROM jobs WHERE app_id = ? AND name = ? "
                               "AND job = ?", (self.app_id, name, blob)).fetchone()
        if row is None:
            return
        begin, kind, expires, count = row
        following = self.next_tick(job, begin, kind, expires, count + 1, tick)
        if following is None:
            self._db.execute("DELETE FROM jobs WHERE app_id = ? AND name = ?", (self.app_id, name))
            return
        self._db.execute("UPDATE jobs SET count = count + 1, last = ?, next_at = ? WHERE app_id = ? AND name = ?",
                         (tick, following, self.app_id, name))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)
        with self._cond:  # a trigger finishing now sees _stop under this lock and leaves the db alone
            self._db.close()
