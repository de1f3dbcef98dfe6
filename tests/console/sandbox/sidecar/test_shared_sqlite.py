"""Every sidecar of a sandbox opens the same SQLite files at the same moment, and none may fail.

Regression: switching a fresh file to WAL does not always wait on SQLite's busy handler, and one
sidecar start in a few dozen died with "database is locked" (CI, stop 6). Five processes opening one
new file at once reproduced it in about one trial in ten.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
import traceback
from pathlib import Path

from console.sandbox.sidecar.jobs import JobStore
from console.sandbox.sidecar.statestore import open_store

PROCESSES = 6
TRIALS = 25


def open_both(state_dir: str, start_at: float, results: multiprocessing.Queue) -> None:
    while time.time() < start_at:  # all processes open the files within the same millisecond
        pass
    try:
        open_store(Path(state_dir), None)
        JobStore(Path(state_dir) / "jobs.db", "app", "default", lambda _name, _job: True)
        results.put("ok")
    except Exception:
        results.put(traceback.format_exc())


def test_sidecars_opening_the_same_new_stores_at_once_all_succeed() -> None:
    context = multiprocessing.get_context("fork")
    failures = []
    for _ in range(TRIALS):
        with tempfile.TemporaryDirectory() as state_dir:
            results = context.Queue()
            start_at = time.time() + 0.3
            procs = [context.Process(target=open_both, args=(state_dir, start_at, results)) for _ in range(PROCESSES)]
            for proc in procs:
                proc.start()
            outcomes = [results.get(timeout=30) for _ in procs]
            for proc in procs:
                proc.join(10)
            failures += [o for o in outcomes if o != "ok"]
    assert not failures, failures[0]
