"""The event consumers on the sandbox: how fast and how completely each flow happens.

Run by hand: ``python tests/bench/bench_events_flows.py [--tasks 200] [--recurring 50] [--updates 50]
[--reminders 10]``. Starts the real sandbox in a fresh directory (as `todo-console sandbox up` does:
tansu, a dev sidecar per service, every service), then measures:

- SC-003 consumption: API 201 for a new task -> the worker's "event handled" log line for its
  task-events event, and -> the audit row's `recorded_at` (target p99 <= 5 s);
- SC-008 capture: every create must give exactly one audit row on each of task-events,
  task-updates and reminders (target 100 %, no duplicates);
- SC-009 recurrence: API 200 for completing a recurring instance -> `created_at` of the next
  instance (target p99 <= 10 s; ours 1 s), with completions at a steady rate and all at once;
- real-time sync: API 200 for an update -> the owner's WebSocket receives it;
- reminder punctuality: a reminder's `remind_at` -> the notification's "reminder due" log line.

Clocks: the services and this script run on one machine, so server timestamps (log `ts`,
`recorded_at`, `created_at`) and the script's wall clock are comparable to the millisecond.
Prints the figures and writes tests/bench/results/events_flows.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from console.sandbox import control
from console.sandbox.layout import SandboxLayout
from tests.bench.sandbox_run import measure

RESULTS = REPO / "tests" / "bench" / "results" / "events_flows.json"
CONCURRENCY = 20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def figures(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1), "max_ms": round(max(values) * 1000, 1)}


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def log_entries(layout: SandboxLayout, service: str) -> list[dict[str, Any]]:
    entries = []
    for line in layout.log(service).read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


async def wait_until(check: Any, timeout: float, what: str) -> Any:  # noqa: ASYNC109 (a deadline, not a cancel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.25)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


async def create_tasks(api: httpx.AsyncClient, n: int, rate: float | None) -> dict[str, float]:
    """n tasks with a due date (so each has a reminder event too); task id -> wall time of the 201.

    With `rate`, one create starts every 1/rate s (steady load); without, CONCURRENCY at a time (a burst).
    """
    done: dict[str, float] = {}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        if rate:
            await asyncio.sleep(i / rate)
        async with gate:
            answer = await api.post("/api/tasks", json={"title": f"bench {i}", "due_at": "2027-06-01T09:00:00Z"})
            answer.raise_for_status()
            done[answer.json()["id"]] = time.time()

    await asyncio.gather(*(one(i) for i in range(n)))
    return done


async def audit_rows(audit: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = (await audit.get("/api/audit", params={"limit": 500, "offset": len(rows)})).json()
        rows += page["items"]
        if len(rows) >= page["total"] or not page["items"]:
            return rows


async def consumption_and_capture(layout: SandboxLayout, api: httpx.AsyncClient, audit: httpx.AsyncClient,
                                  n: int, rate: float | None) -> dict[str, Any]:
    created = await create_tasks(api, n, rate)

    async def all_audited() -> list[dict[str, Any]] | None:
        rows = [r for r in await audit_rows(audit) if r["entity_id"] in created]
        return rows if len(rows) >= 3 * n else None

    rows = await wait_until(all_audited, 120, f"{3 * n} audit rows")
    await asyncio.sleep(2)  # let any duplicate arrive before counting
    rows = [r for r in await audit_rows(audit) if r["entity_id"] in created]
    per_key = Counter((r["entity_id"], r["topic"]) for r in rows)
    audit_latency = [ts(r["recorded_at"]) - created[r["entity_id"]] for r in rows
                     if r["topic"] == "task-events" and r["action"] == "created"]
    handled = {e["subject"]: ts(e["ts"]) for e in log_entries(layout, "worker")
               if e.get("msg") == "event handled" and e.get("topic") == "task-events"
               and e.get("event_type") == "todo.task.created.v1" and e.get("subject") in created}
    worker_latency = [handled[t] - created[t] for t in handled]
    expected = {(t, topic) for t in created for topic in ("task-events", "task-updates", "reminders")}
    return {
        "tasks": n, "load": f"{rate}/s steady" if rate else f"burst, {CONCURRENCY} concurrent",
        "worker_consumed": figures(worker_latency), "worker_missing": n - len(handled),
        "audit_recorded": figures(audit_latency),
        "audit_capture_rate": round(len(expected & set(per_key)) / len(expected), 6),
        "audit_duplicates": sum(c - 1 for c in per_key.values() if c > 1),
    }


async def recurrence(api: httpx.AsyncClient, n: int, rate: float | None,
                     completed_by_task: dict[str, float] | None = None) -> dict[str, Any]:
    """Completion -> next instance created, for n series completed at `rate` per second (None: all
    at once, back to back: the worker then works through a queue). `completed_by_task` receives
    each completed task's id -> wall time of its 200, for a caller that follows it in the logs."""
    firsts = []
    for i in range(n):
        answer = await api.post("/api/tasks", json={"title": f"recurring {i}", "due_at": "2027-01-04T08:00:00Z",
                                                    "timezone": "Europe/Paris", "recurrence_rule": "FREQ=WEEKLY"})
        answer.raise_for_status()
        firsts.append(answer.json())
    completed: dict[str, float] = {}
    started = time.monotonic()
    for i, task in enumerate(firsts):
        if rate:
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        (await api.post(f"/api/tasks/{task['id']}/complete")).raise_for_status()
        completed[task["series_id"]] = time.time()
        if completed_by_task is not None:
            completed_by_task[task["id"]] = completed[task["series_id"]]

    async def next_instances() -> dict[str, dict[str, Any]] | None:
        found: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            page = (await api.get("/api/tasks", params={"status": "pending", "limit": 200, "offset": offset})).json()
            for task in page["items"]:
                if task["series_id"] in completed and task["occurrence_index"] == 2:
                    found[task["series_id"]] = task
            offset += len(page["items"])
            if offset >= page["total"] or not page["items"]:
                break
        return found if len(found) == n else None

    found = await wait_until(next_instances, 120, f"{n} next instances")
    latency = [ts(task["created_at"]) - completed[series] for series, task in found.items()]
    return {"series": n, "load": f"{rate:g}/s steady" if rate else "burst", "next_instance_created": figures(latency)}


async def websocket_push(ws_url: str, token: str, api: httpx.AsyncClient, n: int) -> dict[str, Any]:
    task = (await api.post("/api/tasks", json={"title": "live"})).json()
    latency = []
    async with websockets.connect(f"{ws_url}?token={token}", open_timeout=10) as ws:
        while json.loads(await ws.recv())["type"] != "ready":
            pass
        version = task["version"]
        for i in range(n):
            sent = time.time()
            answer = await api.patch(f"/api/tasks/{task['id']}", headers={"If-Match": f'"{version}"'},
                                     json={"title": f"live {i}"})
            answer.raise_for_status()
            version = answer.json()["version"]
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if message["type"] == "event" and message["data"]["task"]["version"] == version:
                    latency.append(time.time() - sent)
                    break
    return {"updates": n, "api_to_socket": figures(latency)}


async def reminders(layout: SandboxLayout, api: httpx.AsyncClient, n: int) -> dict[str, Any]:
    remind_at: dict[str, float] = {}
    for i in range(n):
        when = datetime.now(UTC) + timedelta(seconds=3 + i * 0.2)
        answer = await api.post("/api/tasks", json={"title": f"remind {i}", "reminder_offset_minutes": 5,
                                                    "due_at": (when + timedelta(minutes=5)).isoformat()})
        answer.raise_for_status()
        remind_at[answer.json()["id"]] = when.timestamp()

    async def fired() -> dict[str, float] | None:
        lines = {e["notification"]["task_id"]: ts(e["ts"]) for e in log_entries(layout, "notification")
                 if e.get("msg") == "reminder due" and e.get("notification", {}).get("task_id") in remind_at}
        return lines if len(lines) == n else None

    lines = await wait_until(fired, 60, f"{n} reminders")
    lateness = [lines[t] - remind_at[t] for t in lines]
    return {"reminders": n, "lateness": figures(lateness), "early": sum(1 for x in lateness if x < 0)}


def handler_times(layout: SandboxLayout) -> dict[str, Any]:
    """Time each consumer spent answering daprd's deliveries (its own `request` log lines): tells
    whether a latency above is the consumer's or the pipeline's (relay, broker, sidecar)."""
    result = {}
    for service in ("worker", "notification", "websocket", "audit"):
        took = [e["duration_ms"] / 1000 for e in log_entries(layout, service)
                if e.get("msg") == "request" and str(e.get("route", "")).startswith(("/events/", "/job/"))]
        result[service] = figures(took)
    return result


async def run(layout: SandboxLayout, result: control.UpResult, args: argparse.Namespace) -> dict[str, Any]:
    processes = result.state["processes"]
    headers = {"Authorization": f"Bearer {result.token}"}
    api_url = f"http://127.0.0.1:{processes['backend']['port']}"
    audit_url = f"http://127.0.0.1:{processes['audit']['port']}"
    ws_url = f"ws://127.0.0.1:{processes['websocket']['port']}/ws"
    # Idle connections are let go after 2 s, before uvicorn's 5 s keep-alive closes them: at httpx's own
    # 5 s a request could go out on a connection the server was closing (ReadError in the burst that
    # follows the steady run's wait for the audit).
    limits = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30, limits=limits) as api, \
            httpx.AsyncClient(base_url=audit_url, headers=headers, timeout=30, limits=limits) as audit:
        return {
            "consumption_steady": await consumption_and_capture(layout, api, audit, args.tasks, args.rate),
            "consumption_burst": await consumption_and_capture(layout, api, audit, args.tasks, None),
            "recurrence_steady": await recurrence(api, args.recurring, args.completion_rate),
            "recurrence_burst": await recurrence(api, args.recurring, None),
            "websocket": await websocket_push(ws_url, result.token, api, args.updates),
            "reminders": await reminders(layout, api, args.reminders),
            "consumer_handling": handler_times(layout),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="creates per second for the steady run")
    parser.add_argument("--recurring", type=int, default=50)
    parser.add_argument("--completion-rate", type=float, default=5.0,
                        help="completions per second for the steady recurrence run")
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--reminders", type=int, default=10)
    args = parser.parse_args()
    if min(args.tasks, args.recurring, args.updates, args.reminders) < 1 or min(args.rate, args.completion_rate) <= 0:
        print("bench_events_flows: every count must be >= 1 and every rate > 0", file=sys.stderr)
        return 2
    measured = measure("bench_events_flows", "events-flows-",
                       lambda layout, result: asyncio.run(run(layout, result, args)))
    if isinstance(measured, int):
        return measured
    summary = {"bench": "events_flows", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "cpus": os.cpu_count(), "python": platform.python_version(), **measured,
               "targets": {"consumed_p99_ms": 5000, "recurrence_p99_ms": 10000, "audit_capture_rate": 1.0}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    w, m = (measured[k] for k in ("websocket", "reminders"))
    for c in (measured["consumption_steady"], measured["consumption_burst"]):
        print(f"{c['tasks']} creates, {c['load']}:")
        print(f"  SC-003 worker consumed {c['worker_consumed']}  (missing {c['worker_missing']})")
        print(f"  SC-003 audit recorded  {c['audit_recorded']}")
        print(f"  SC-008 audit capture   {c['audit_capture_rate']:.2%} of {3 * c['tasks']} (task x topic), "
              f"duplicates {c['audit_duplicates']}")
    for r in (measured["recurrence_steady"], measured["recurrence_burst"]):
        print(f"SC-009 next instance, {r['series']} completions {r['load']}: {r['next_instance_created']}")
    print(f"websocket API->socket    {w['api_to_socket']}")
    print(f"reminder lateness        {m['lateness']}  (early: {m['early']})")
    for service, took in measured["consumer_handling"].items():
        print(f"{service:<12} handling   {took}")
    print(f"written to {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
