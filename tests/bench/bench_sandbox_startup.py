"""Sandbox cold start to all-ready, and the idle memory of every sandbox process.

Run by hand: ``python tests/bench/bench_sandbox_startup.py [--runs 3] [--idle 5] [--durable]``.
Each run starts the real sandbox in a fresh directory on free ports (`control.up`, the same code
as `todo-console sandbox up`), times it until the supervisor reports every service and sidecar
ready, lets it idle, sums the resident memory (VmRSS from /proc) of the supervisor, the broker
and every process group it started, then stops it. Target: all-ready in <= 15 s on 2 cores.
Prints the figures and writes tests/bench/results/sandbox_startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
from console.sandbox import control
from console.sandbox.layout import SandboxLayout
from console.sandbox.procs import group_members, pid_alive

RESULTS = REPO / "tests" / "bench" / "results" / "sandbox_startup.json"
TARGET_S = 15.0


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_process(state: dict[str, Any], measure: Any) -> dict[str, Any]:
    """`measure(pid)` for each sandbox process (a group's members summed under its name)."""
    out = {"supervisor": measure(state["supervisor_pid"])}
    for name, proc in state["processes"].items():
        out[name] = sum(measure(p) for p in group_members(proc["pgid"]) if pid_alive(p))
    broker = state["broker"]
    if broker.get("pid"):
        out["broker"] = measure(broker["pid"])
    if broker.get("s3") and broker["s3"].get("pid"):
        out["s3"] = measure(broker["s3"]["pid"])
    return out


def one_run(durable: bool, idle_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        layout = SandboxLayout(Path(tmp))
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        result = control.up(layout, durable=durable, port_base=0, timeout_s=120)
        ready_s = time.monotonic() - started
        try:
            # CPU the sandbox burned to get ready: unlike wall time, barely moved by other load.
            cpu = per_process(control.status(layout), cpu_seconds)
            time.sleep(idle_s)
            state = control.status(layout)
            rss = per_process(state, rss_kib)
        finally:
            down_started = time.monotonic()
            control.down(layout)
            down_s = time.monotonic() - down_started
    return {"ready_s": round(ready_s, 2), "down_s": round(down_s, 2), "cpu_s_to_ready": round(sum(cpu.values()), 2),
            "cpu_s_by_process": {k: round(v, 2) for k, v in cpu.items()},
            "loadavg_1m_before": round(load_before, 2), "rss_kib": rss,
            "rss_total_mib": round(sum(rss.values()) / 1024, 1), "services": sorted(
                n for n, p in state["processes"].items() if p["kind"] == "service"), "absent": result.absent}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before reading RSS")
    parser.add_argument("--durable", action="store_true", help="measure durable mode (local S3) instead")
    args = parser.parse_args()
    runs = []
    for i in range(args.runs):
        try:
            run = one_run(args.durable, args.idle)
        except control.SandboxError as exc:
            print(f"bench_sandbox_startup: cannot start the sandbox: {exc}", file=sys.stderr)
            return 2
        runs.append(run)
        print(f"run {i + 1}: all ready in {run['ready_s']:.2f}s (CPU {run['cpu_s_to_ready']:.1f}s, load before "
              f"{run['loadavg_1m_before']:.1f}), idle RSS {run['rss_total_mib']:.1f} MiB, down in {run['down_s']:.2f}s")
    ready = [r["ready_s"] for r in runs]
    rss = [r["rss_total_mib"] for r in runs]
    summary = {
        "bench": "sandbox_startup",
        "mode": "durable" if args.durable else "memory",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "runs": runs,
        "ready_s": {"median": statistics.median(ready), "max": max(ready), "min": min(ready)},
        "rss_total_mib": {"median": statistics.median(rss), "max": max(rss)},
        "cpu_s_to_ready": {"median": statistics.median(r["cpu_s_to_ready"] for r in runs)},
        "target_ready_s": TARGET_S,
        "meets_target": max(ready) <= TARGET_S,
    }
    print(f"cold start to all-ready: median {summary['ready_s']['median']:.2f}s, max {max(ready):.2f}s "
          f"(target <= {TARGET_S:.0f}s on 2 cores: {'met' if summary['meets_target'] else 'MISSED'})")
    print(f"CPU time to all-ready: median {summary['cpu_s_to_ready']['median']:.1f}s "
          f"(>= {summary['cpu_s_to_ready']['median'] / (os.cpu_count() or 1):.1f}s of wall time on "
          f"{os.cpu_count()} idle cores)")
    print(f"idle RSS of all sandbox processes: median {summary['rss_total_mib']['median']:.1f} MiB")
    biggest = sorted(runs[-1]["rss_kib"].items(), key=lambda kv: -kv[1])
    print("per process (last run, MiB): " + ", ".join(f"{n} {v / 1024:.0f}" for n, v in biggest))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
