"""The job store underneath the Jobs API: what is due is found by index, and old stores upgrade.

The gRPC behaviour (validation, errors, timing) is pinned in test_jobs.py through the SDK; these
tests drive the store directly for what the API cannot show.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dapr.proto.runtime.v1 import jobs_pb2

from console.sandbox.sidecar.jobs import JobStore


class Fired:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.event = threading.Event()

    def __call__(self, name: str, _job: jobs_pb2.Job) -> bool:
        self.names.append(name)
        self.event.set()
        return True


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


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
        assert wait_for(lambda: "now" not in {j.name for j in store.list_jobs()})
        assert len(store.list_jobs()) == 2000
    finally:
        store.stop()


def test_a_repeating_job_keeps_its_next_tick_until_repeats_are_spent(tmp_path: Path) -> None:
    fired = Fired()
    store = JobStore(tmp_path / "jobs.db", "worker", "default", fired)
    store.start()
    try:
        store.schedule(jobs_pb2.Job(name="tick", schedule="@every 1s", due_time="0s", repeats=2), overwrite=False)
        assert wait_for(lambda: fired.names == ["tick", "tick"], timeout=6)
        assert wait_for(lambda: not store.list_jobs())
    finally:
        store.stop()


def test_a_store_from_before_next_at_is_upgraded_and_its_jobs_fire(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE jobs (app_id TEXT, name TEXT, job BLOB, begin_at REAL, start_kind TEXT, "
                "expires REAL, count INTEGER, last REAL, PRIMARY KEY (app_id, name))")
    job = jobs_pb2.Job(name="missed", due_time="1s")
    old.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, 'due', NULL, 0, NULL)",
                ("notification", "missed", job.SerializeToString(), time.time() - 60))
    old.commit()
    old.close()

    fired = Fired()
    store = JobStore(path, "notification", "default", fired)
    store.start()
    try:
        assert fired.event.wait(5), "a tick missed while stopped must fire on start"
        assert fired.names == ["missed"]
    finally:
        store.stop()
