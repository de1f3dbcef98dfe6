"""Event delivery in durable mode beside memory mode, in the same run: throughput, end-to-end latency,
completeness, and a broker killed under load.

Run by hand: ``python tests/bench/bench_delivery.py [--rate 40] [--seconds 30] [--kill-broker-after 10]``.
For each mode (memory, then durable) it starts a fresh sandbox as `todo-console sandbox up [--durable]`
does, drives `--rate` writes per second through the API for `--seconds` (the API load benchmark's write
rate by default: 100 users, 1 s think time, 40 % writes), each with its own correlation id, and waits
until the audit log holds every event of every action answered 2xx (see tests/bench/delivery_load.py):

- end-to-end latency: the outbox commit of an event -> its audit row (`recorded_at`), every event;
- delivery throughput: events delivered / (last audit row - first commit);
- drain: last API answer -> audit complete (0 when deliveries keep up with the writes);
- completeness: actions answered 2xx whose events are not all in the audit log, and duplicates;
- the factor durable / memory for each figure;
- CPU of the broker and (durable) the local S3, in cores, from the start of the load until all delivered;
- with `--kill-broker-after S`: in durable mode, the broker is killed with SIGKILL S seconds into the load
  and the supervisor restarts it; completeness must stay whole.

Durable mode also reports the local S3's request mix (its `requests` log lines over the run).
Prints the figures and writes tests/bench/results/delivery.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from console.sandbox import control
from console.sandbox.layout import SandboxLayout
from tests.bench.delivery_load import (
    API_LOAD_WRITES_PER_S,
    delivery,
    drive,
    parse_time,
    percentile,
    wait_for_delivery,
)
from tests.bench.sandbox_run import SandboxUnavailable, backend_url, fresh_sandbox

RESULTS = REPO / "tests" / "bench" / "results" / "delivery.json"


def kill_broker_later(layout: SandboxLayout, after_s: float, killed: dict[str, Any]) -> threading.Thread:
    def kill() -> None:
        time.sleep(after_s)
        pid = ((control.read_state(layout) or {}).get("broker") or {}).get("pid")
        if pid:
            os.kill(pid, signal.SIGKILL)
            killed.update(pid=pid, at=time.time())

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU a live process has used so far (/proc/<pid>/stat), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def broker_pids(layout: SandboxLayout) -> dict[str, int | None]:
    broker = (control.read_state(layout) or {}).get("broker") or {}
    return {"broker": broker.get("pid"), "s3": (broker.get("s3") or {}).get("pid")}


def cpu_share(before: dict[str, float | None], pids: dict[str, int | None], seconds: float) -> dict[str, float]:
    """Cores used by each process over the window (a process restarted meanwhile is left out)."""
    shares = {}
    for name, pid in pids.items():
        start, end = before.get(name), cpu_seconds(pid)
        if start is not None and end is not None and end >= start:
            shares[name] = round((end - start) / seconds, 2)
    return shares


def s3_mix(layout: SandboxLayout, since: float, until: float) -> dict[str, Any]:
    """The local S3's request counts per second by operation, over its `requests` lines in the window."""
    totals: Counter[str] = Counter()
    window = 0.0
    busy = []
    path = layout.log("s3")
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") != "requests":
            continue
        at = parse_time(entry["ts"].replace("Z", "+00:00"))
        if since <= at <= until + 10:
            window += entry["window_s"]
            totals.update(entry["by_operation"])
            busy.append(entry["handling_ms"]["busy_share"])
    if not window:
        return {}
    return {"per_s": {op: round(n / window, 1) for op, n in totals.most_common()},
            "total_per_s": round(sum(totals.values()) / window, 1),
            "server_busy_share_max": max(busy)}


def run_mode(durable: bool, args: argparse.Namespace) -> dict[str, Any]:
    mode = "durable" if durable else "memory"
    with fresh_sandbox(f"delivery-{mode}-", durable=durable) as (layout, result):
        secret = json.loads(layout.secrets.read_text())["todo-auth"]["jwt-secret"]
        killed: dict[str, Any] = {}
        if durable and args.kill_broker_after is not None:
            kill_broker_later(layout, args.kill_broker_after, killed)
        pids = broker_pids(layout)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        window = time.monotonic()
        driven = asyncio.run(drive(backend_url(result), secret, rate=args.rate, seconds=args.seconds))
        found = wait_for_delivery(layout.root, driven.accepted, args.drain_timeout)
        cpu = cpu_share(cpu_before, pids, time.monotonic() - window)
        lat = found.latencies_s()
        state = control.read_state(layout) or {}
        figures: dict[str, Any] = {
            "mode": mode, "answers": driven.counts(), "accepted": len(driven.accepted),
            "api_ms": {"p50": round(percentile(driven.latencies_ms, 50), 1),
                       "p99": round(percentile(driven.latencies_ms, 99), 1)},
            "events": len(found.expected), "delivered": len(found.recorded), "duplicates": found.duplicates,
            "actions_missing_events": len(found.missing_actions),
            "e2e_ms": {"p50": round(percentile(lat, 50) * 1000, 1), "p99": round(percentile(lat, 99) * 1000, 1),
                       "max": round(max(lat, default=0) * 1000, 1)},
            "cpu_cores_load_to_delivered": cpu,
        }
        if found.recorded:
            span = max(found.recorded.values()) - min(found.expected.values())
            figures["throughput_events_per_s"] = round(len(found.recorded) / span, 1)
            figures["drain_s_after_last_answer"] = round(max(0.0, max(found.recorded.values()) - driven.ended), 1)
        if killed:
            figures["broker_killed"] = {"after_s": args.kill_broker_after,
                                        "restarts": (state.get("broker") or {}).get("restarts")}
        if durable:
            figures["s3_requests"] = s3_mix(layout, driven.started, driven.ended)
            figures["objects_file_mb"] = round((layout.s3_data / "tansu.sqlite3").stat().st_size / 1e6, 1)
        # What a late look would add: the audit log after a pause (duplicates arriving late count too).
        time.sleep(2)
        figures["duplicates"] = delivery(layout.root, driven.accepted).duplicates
    return figures


def factor(durable: float | None, memory: float | None) -> float | None:
    return round(durable / memory, 2) if durable and memory else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=API_LOAD_WRITES_PER_S, help="writes per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kill-broker-after", type=float, default=None,
                        help="durable run: SIGKILL the broker this many seconds into the load")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--durable-only", action="store_true", help="skip the memory run")
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0 or (args.kill_broker_after is not None and args.kill_broker_after < 0):
        print("bench_delivery: --rate and --seconds must be above 0, --kill-broker-after not negative",
              file=sys.stderr)
        return 2
    runs = {}
    try:
        for durable in ((True,) if args.durable_only else (False, True)):
            runs["durable" if durable else "memory"] = run_mode(durable, args)
    except SandboxUnavailable as exc:
        print(f"bench_delivery: {exc}", file=sys.stderr)
        return 2
    summary: dict[str, Any] = {
        "bench": "delivery", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0], "python": platform.python_version(), "rate_writes_per_s": args.rate,
        "seconds": args.seconds, **runs}
    if "memory" in runs:
        m, d = runs["memory"], runs["durable"]
        summary["durable_over_memory"] = {
            "e2e_p50": factor(d["e2e_ms"]["p50"], m["e2e_ms"]["p50"]),
            "e2e_p99": factor(d["e2e_ms"]["p99"], m["e2e_ms"]["p99"]),
            "throughput": factor(d.get("throughput_events_per_s"), m.get("throughput_events_per_s")),
            "api_p99": factor(d["api_ms"]["p99"], m["api_ms"]["p99"])}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    print(f"{args.rate:g} writes/s for {args.seconds:g}s, load average {summary['load_average']:.1f}")
    for name, r in runs.items():
        print(f"{name:8} accepted {r['accepted']} actions, {r['events']} events, delivered {r['delivered']}, "
              f"missing {r['actions_missing_events']} actions, duplicates {r['duplicates']}")
        print(f"         e2e commit->audit p50 {r['e2e_ms']['p50']} ms  p99 {r['e2e_ms']['p99']} ms  "
              f"max {r['e2e_ms']['max']} ms; throughput {r.get('throughput_events_per_s')} events/s; "
              f"drained {r.get('drain_s_after_last_answer')} s after the last answer; API p50 {r['api_ms']['p50']} "
              f"ms p99 {r['api_ms']['p99']} ms")
        if r.get("broker_killed"):
            print(f"         broker killed after {r['broker_killed']['after_s']:g}s, restarts "
                  f"{r['broker_killed']['restarts']}")
        print(f"         CPU (cores, load start -> all delivered): {r['cpu_cores_load_to_delivered']}")
        if r.get("s3_requests"):
            print(f"         local S3: {r['s3_requests']['total_per_s']} req/s {r['s3_requests']['per_s']}")
    if "durable_over_memory" in summary:
        print(f"durable / memory: {summary['durable_over_memory']}")
    print(f"written to {RESULTS.relative_to(REPO)}")
    return 0 if all(r["actions_missing_events"] == 0 and r["duplicates"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
