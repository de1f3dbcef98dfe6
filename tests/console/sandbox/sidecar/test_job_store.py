"""The job store underneath the Jobs API: what is due is found by index, and old stores upgrade.

The gRPC behaviour (validation, errors, timing) is pinned in test_jobs.py through the SDK; these
tests drive the store directly for what the API cannot show.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from dapr.proto.runtime.v1 import jobs_pb2

from console.sandbox.sidecar.jobs import JobStore
from tests.utils.waiting import wait_until


class Fired:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.event = threading.Event()

    def __call__(self, name: str, _job: jobs_pb2.Job) -> bool:
        self.names.append(name)
        self.event.set()
        return True


def test_a_due_job_fires_among_thousands_pending_and_is_then_gone(tmp_path: Path) -> None:
    fired = Fired()
    store = JobStore(tmp_path / "jobs.db", "notification", "default", fired)
    store.start()
    try:
        for n in range(2000):
            store.schedule(jobs_pb2.Job(name=f"later-{n}", due_time="1h"), overwrite=False)
        store.schedule(jobs_pb2.Job(name="now", due_time="0s"), overwrite=False)
        assert fired.event.wait(5), "the due job did not fire"
        assert fired.names == ["now"]
        wait_until(lambda: "now" not in {j.name for j in store.list_jobs()}, 5, message="the fired job removed")
        assert len(store.list_jobs()) == 2000
    finally:
        store.stop()


def test_a_store_from_before_next_at_is_upgraded_and_its_jobs_fire(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE jobs (app_id TEXT, name TEXT, job BLOB, begin_at REAL, start_kind TEXT, "
                "expires REAL, count INTEGER, last REAL, PRIMARY KEY (app_id, name))")
    missed = jobs_pb2.Job(name="missed", due_time="1s")
    cron = jobs_pb2.Job(name="cron", schedule="@every 1s")  # older sidecars ran schedules; this one refuses them
    for job in (missed, cron):
        old.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, 'due', NULL, 0, NULL)",
                    ("notification", job.name, job.SerializeToString(), time.time() - 60))
    old.commit()
    old.close()

    fired = Fired()
    store = JobStore(path, "notification", "default", fired)
    store.start()
    try:
        assert fired.event.wait(5), "a job due while stopped must fire on start"
        assert fired.names == ["missed"]
        wait_until(lambda: not store.list_jobs(), 5, message="the fired job removed, the scheduled one dropped")
        assert fired.names == ["missed"]
    finally:
        store.stop()
