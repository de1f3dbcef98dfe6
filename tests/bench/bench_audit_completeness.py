"""Audit completeness over N mixed actions (SC-008), and the time the audit log takes to drain.

Run by hand: ``python tests/bench/bench_audit_completeness.py [--actions 10000] [--concurrency 20]``.
Starts the real sandbox in a fresh directory, drives N actions through the API (creates, updates,
completions, deletes, about 40/30/15/15 %, spread over 20 users), then waits until the audit log
holds one row per event the backend committed to its outbox. Completeness = audit rows / outbox
events; duplicates = rows sharing a (topic, event id). Drain time = last API answer -> audit complete.
Prints the figures and writes tests/bench/results/audit_completeness.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from services.platform.auth import mint_dev_token
from tests.bench.delivery_load import mixed_action
from tests.bench.sandbox_run import SandboxUnavailable, backend_url, fresh_sandbox

RESULTS = REPO / "tests" / "bench" / "results" / "audit_completeness.json"
USERS = 20


async def drive(api: str, secret: str, actions: int, concurrency: int) -> dict[str, int]:
    """Perform `actions` API actions; returns how many of each succeeded."""
    done: dict[str, int] = {"create": 0, "update": 0, "complete": 0, "delete": 0, "failed": 0}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(actions):
        queue.put_nowait(n)
    tokens = [mint_dev_token(secret, f"audit-bench-{u}") for u in range(USERS)]
    open_tasks: list[list[tuple[str, int]]] = [[] for _ in range(USERS)]
    limits = httpx.Limits(max_connections=concurrency, keepalive_expiry=2.0)

    async def worker(client: httpx.AsyncClient, rng: random.Random) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            user = n % USERS
            headers = {"Authorization": f"Bearer {tokens[user]}"}
            try:
                kind, answer = await mixed_action(client, headers, open_tasks[user], rng, n)
                ok = answer.status_code in (200, 201, 204)
            except httpx.TransportError:
                kind, ok = "failed", False
            done[kind if ok else "failed"] += 1

    async with httpx.AsyncClient(base_url=api, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client, random.Random(i)) for i in range(concurrency)))
    return done


def outbox_events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox_events").fetchone()[0])


def audit_rows(db: Path) -> tuple[int, int]:
    """(rows, distinct (topic, event id)) in the audit log."""
    with sqlite3.connect(db) as conn:
        rows = int(conn.execute("SELECT count(*) FROM audit_log").fetchone()[0])
        distinct = int(conn.execute("SELECT count(*) FROM (SELECT DISTINCT topic, event_id FROM audit_log)")
                       .fetchone()[0])
    return rows, distinct


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    args = parser.parse_args()
    if args.actions < 1 or args.concurrency < 1:
        print("bench_audit_completeness: --actions and --concurrency must be >= 1", file=sys.stderr)
        return 2
    try:
        with fresh_sandbox("audit-bench-") as (layout, result):
            secret = json.loads(layout.secrets.read_text())["todo-auth"]["jwt-secret"]
            started = time.monotonic()
            done = asyncio.run(drive(backend_url(result), secret, args.actions, args.concurrency))
            driven_s = time.monotonic() - started
            expected = outbox_events(layout.root / "backend.db")
            deadline = time.monotonic() + args.drain_timeout
            rows, distinct = audit_rows(layout.root / "audit.db")
            while distinct < expected and time.monotonic() < deadline:
                time.sleep(0.5)
                rows, distinct = audit_rows(layout.root / "audit.db")
            drain_s = time.monotonic() - started - driven_s
    except SandboxUnavailable as exc:
        print(f"bench_audit_completeness: {exc}", file=sys.stderr)
        return 2
    summary: dict[str, Any] = {
        "bench": "audit_completeness", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(), "python": platform.python_version(), "actions": args.actions,
        "succeeded": done, "api_seconds": round(driven_s, 1), "api_actions_per_s": round(args.actions / driven_s, 1),
        "outbox_events": expected, "audit_rows": rows, "audit_distinct": distinct,
        "completeness": round(distinct / expected, 6) if expected else None, "duplicates": rows - distinct,
        "drain_seconds_after_last_action": round(drain_s, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    print(f"{args.actions} actions in {driven_s:.1f}s ({summary['api_actions_per_s']}/s): {done}")
    print(f"audit: {distinct} of {expected} events ({summary['completeness']:.4%}), duplicates {rows - distinct}, "
          f"drained {drain_s:.1f}s after the last action")
    print(f"written to {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
