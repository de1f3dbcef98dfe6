"""The Jobs API for one-shot jobs: schedule, persist and fire them on the app, as daprd + the Scheduler do.

Validation and errors follow dapr/dapr pkg/api/universal/jobs.go and go-etcd-cron (the
Scheduler's engine, internal/scheduler/builder.go): name/schedule presence is checked by daprd
("Name is empty", "Schedule is empty"); the rest ("job failed validation: ...", "job already
exists: '...'") comes back from the Scheduler inside daprd's "failed to schedule job due to: rpc
error: ..." wrapper. The product schedules one-shot jobs only (a `dueTime`, no `schedule`), so
that is what the sandbox implements: a job with a `schedule` (cron, @every) is refused with
UNIMPLEMENTED, saying so, rather than run by a cron engine the cluster never exercises.
The due time is an RFC 3339 time (Go's time.RFC3339: a `T`, seconds, `Z` or a `±hh:mm` offset), a
Go duration or an ISO 8601 duration; a due time in the past fires at once. The trigger is the
app's answer to POST /job/<name> (daprd's HTTP channel): 2xx is done, and so is 404 (daprd's
scheduler streamer treats NotFound as handled, logged as an error, never retried); anything else
is retried by the job's failure policy (default: constant 1 s, 3 retries). Jobs live in SQLite
under --state-dir, so they survive sidecar restarts; a job due while the sidecar was stopped fires
on start.
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

from console.sandbox.sidecar import errors
from console.sandbox.sidecar.resiliency import parse_duration
from console.sandbox.sidecar.sqlitefile import connect_shared

log = logging.getLogger(__name__)

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_ISO = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DEFAULT_RETRY_INTERVAL_S = 1.0
DEFAULT_MAX_RETRIES = 3

# fire(name, job) -> True when the app handled the trigger (2xx, or 404)
Trigger = Callable[[str, jobs_pb2.Job], bool]


def _point_in_time(text: str, now: datetime) -> datetime:
    """go-etcd-cron parsePointInTime: Go's time.RFC3339, a Go duration, or an ISO 8601 duration (no repeats)."""
    if _RFC3339.match(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # an out-of-range field: Go's time.Parse fails too
    try:
        return now + timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    if text.startswith("R"):
        raise ValueError("repeats not supported for due time")
    m = _ISO.match(text)
    if not m or text in ("P", "PT"):
        raise ValueError("due time format not recognized")
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
    """Persistent one-shot jobs for one app-id (`next_at`: when each is due), plus the thread that fires them."""

    def __init__(self, path: Path, app_id: str, namespace: str, trigger: Trigger) -> None:
        self.app_id, self.namespace, self._trigger = app_id, namespace, trigger
        self._db = connect_shared(path, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS jobs (app_id TEXT, name TEXT, job BLOB, next_at REAL, "
                         "PRIMARY KEY (app_id, name))")
        self._upgrade()
        self._db.execute("CREATE INDEX IF NOT EXISTS jobs_next_at ON jobs (app_id, next_at)")
        self._cond = threading.Condition()
        self._in_flight: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)

    def _upgrade(self) -> None:
        """A store kept from an older sidecar: due times from `begin_at`, no finished or scheduled jobs.

        Older sidecars ran cron schedules and kept finished ticks' rows; their columns stay unused.
        """
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "next_at" not in columns:
            self._db.execute("ALTER TABLE jobs ADD COLUMN next_at REAL")
            self._db.execute("UPDATE jobs SET next_at = begin_at WHERE COALESCE(count, 0) = 0")
        self._db.execute("DELETE FROM jobs WHERE next_at IS NULL")
        for app_id, name, blob in self._db.execute("SELECT app_id, name, job FROM jobs").fetchall():
            job = jobs_pb2.Job()
            job.ParseFromString(blob)
            if job.HasField("schedule"):
                log.warning("stored job with a schedule dropped: schedules are not implemented",
                            extra={"app_id": app_id, "job": name, "schedule": job.schedule})
                self._db.execute("DELETE FROM jobs WHERE app_id = ? AND name = ?", (app_id, name))

    # ---- API -----------------------------------------------------------------------------------
    def _meta(self) -> tuple[str, str]:
        return self.app_id, self.namespace

    def schedule(self, job: jobs_pb2.Job | None, overwrite: bool) -> None:
        """Validate and store a job; DaprError as daprd returns it, or the sandbox's refusal of schedules."""
        if job is None:
            raise errors.job_empty("Job", *self._meta(), "DAPR_SCHEDULER_EMPTY")
        if not job.name:
            raise errors.job_empty("Name", *self._meta(), "DAPR_SCHEDULER_JOB_NAME_EMPTY")
        if not job.HasField("schedule") and not job.HasField("due_time"):
            raise errors.job_empty("Schedule", *self._meta(), "DAPR_SCHEDULER_SCHEDULE_EMPTY")
        if job.HasField("schedule"):
            raise errors.not_implemented(f"job {job.name}: a schedule ({job.schedule!r})",
                                         "only one-shot jobs (a dueTime, no schedule) run in the sandbox")
        full_name = f"app||{self.namespace}||{self.app_id}||{job.name}"
        try:
            _check_name(full_name)
            due = self._validate(job)
        except ValueError as exc:
            detail = str(exc) if str(exc).startswith("job name") else f"job failed validation: {exc}"
            raise errors.job_schedule(*self._meta(), grpc.StatusCode.UNKNOWN, detail) from None
        row = (self.app_id, job.name, job.SerializeToString(), due.timestamp())
        insert = "INTO jobs (app_id, name, job, next_at) VALUES (?, ?, ?, ?)"
        with self._cond:
            if overwrite:
                self._db.execute("INSERT OR REPLACE " + insert, row)
            else:
                cur = self._db.execute("INSERT OR IGNORE " + insert, row)
                if cur.rowcount != 1:
                    raise errors.job_schedule(*self._meta(), grpc.StatusCode.ALREADY_EXISTS,
                                              f"job already exists: '{full_name}'")
            self._cond.notify_all()
        # debug: a line per call was 6 % of the notification sidecar's CPU under load (py-spy)
        log.debug("job scheduled", extra={"job": job.name, "overwrite": overwrite})

    @staticmethod
    def _validate(job: jobs_pb2.Job) -> datetime:
        """go-etcd-cron's Builder.Parse checks for a job without a schedule, in its order; the due time."""
        if job.HasField("repeats") and job.repeats > 1:
            raise ValueError("job must have a schedule to repeat")
        if job.HasField("repeats") and job.repeats < 1:
            raise ValueError("defined repeats must be greater than 0")
        if job.HasField("ttl"):
            raise ValueError("job must have a schedule to have a ttl")
        return _point_in_time(job.due_time, datetime.now(UTC))

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
    def _due(self) -> tuple[list[tuple[str, jobs_pb2.Job]], float | None]:
        """Jobs due now, and the earliest future due time (to sleep until).

        Reads only what is due, by the indexed `next_at`: the loop runs on every schedule call, and
        scanning (and parsing) every stored job each time made scheduling O(n) per job, which with
        a thousand pending reminders cost the notification sidecar a fifth of a core.
        """
        now = time.time()
        rows = self._db.execute("SELECT name, job FROM jobs WHERE app_id = ? AND next_at <= ? ORDER BY next_at",
                                (self.app_id, now)).fetchall()
        due = []
        for name, blob in rows:
            if name in self._in_flight:
                continue
            job = jobs_pb2.Job()
            job.ParseFromString(blob)
            due.append((name, job))
        (earliest,) = self._db.execute("SELECT MIN(next_at) FROM jobs WHERE app_id = ? AND next_at > ?",
                                       (self.app_id, now)).fetchone()
        return due, earliest

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                due, earliest = self._due()
                for name, job in due:
                    self._in_flight.add(name)
                    threading.Thread(target=self._fire, args=(name, job), daemon=True, name=f"job-{name}").start()
                if not due:
                    wait = None if earliest is None else max(0.0, earliest - time.time())
                    self._cond.wait(timeout=wait if wait is not None else 5.0)

    def _fire(self, name: str, job: jobs_pb2.Job) -> None:
        """Trigger the app, retrying per the job's failure policy; then the one-shot job is done."""
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
                    return  # shutting down: the job stays and fires again on the next start
                # done, unless it was replaced (overwrite) while it fired
                self._db.execute("DELETE FROM jobs WHERE app_id = ? AND name = ? AND job = ?",
                                 (self.app_id, name, job.SerializeToString()))
        finally:
            with self._cond:
                self._in_flight.discard(name)
                self._cond.notify_all()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)
        with self._cond:  # a trigger finishing now sees _stop under this lock and leaves the db alone
            self._db.close()
