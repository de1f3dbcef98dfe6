"""What each sandbox process costs: CPU seconds and resident memory, from the kernel's own counters.

Latency on a shared 2-core machine depends on who else is running; the CPU a process spent does
not (much). So the benchmarks read every process's `/proc/<pid>/stat` (utime + stime, plus the
cutime + cstime of children it reaped) and RSS, summed per process group (each sandbox process
runs in its own session, see console/sandbox/procs.py), before and after a phase, and divide by the
actions or seconds of that phase. PostgreSQL's backends put themselves in process groups of their
own (setsid), so the CPU of a group leader's children counts with it too: counted only once reaped,
the backends of a pool that keeps its connections were missed, and only closed ones showed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from console.sandbox.procs import process_stats

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass(frozen=True)
class Sample:
    """CPU seconds and RSS (MiB) per named process group at one moment."""

    at: float  # monotonic seconds
    cpu_s: dict[str, float]
    rss_mb: dict[str, float]


def sandbox_groups(state: dict[str, Any]) -> dict[str, int]:
    """Name -> process group id of every running sandbox process, from its state.json."""
    groups: dict[str, int] = {}
    if state.get("supervisor_pid"):
        groups["supervisor"] = int(state["supervisor_pid"])
    broker = state.get("broker") or {}
    if broker.get("pid"):
        groups["broker"] = int(broker["pid"])
    if (broker.get("s3") or {}).get("pid"):
        groups["s3"] = int(broker["s3"]["pid"])
    for name, proc in (state.get("processes") or {}).items():
        if proc.get("pid"):
            groups[name] = int(proc.get("pgid") or proc["pid"])
    return groups


def sample(groups: dict[str, int]) -> Sample:
    """One pass over /proc: CPU and RSS summed over the members of each group.

    A pid whose group is not its own (a process in no group of ours, e.g. this benchmark) can be
    named by passing its pid as the group of a name: it is then matched by pid too.
    """
    by_pgid = {pgid: name for name, pgid in groups.items()}
    cpu = dict.fromkeys(groups, 0.0)
    rss = dict.fromkeys(groups, 0.0)
    for pid, fields in process_stats():
        name = by_pgid.get(int(fields[2])) or by_pgid.get(pid)
        if name is not None:
            cpu[name] += sum(int(f) for f in fields[11:15]) / TICKS
            rss[name] += int(fields[21]) * PAGE_MB
        elif (parent := by_pgid.get(int(fields[1]))) is not None:
            # A backend's RSS is mostly the shared buffers its leader already counts: its CPU only.
            cpu[parent] += sum(int(f) for f in fields[11:15]) / TICKS
    return Sample(time.monotonic(), cpu, rss)


def delta(before: Sample, after: Sample) -> dict[str, float]:
    """CPU seconds each group spent between two samples (a group that appeared counts from zero)."""
    return {name: max(0.0, after.cpu_s.get(name, 0.0) - before.cpu_s.get(name, 0.0)) for name in after.cpu_s}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cost_table(spent: dict[str, float], per: float, unit: str) -> dict[str, float]:
    """Each group's CPU seconds divided by `per` (actions or seconds), in `unit` (ms or % of a core),
    plus the whole sandbox as `total`, largest first."""
    scale = 1000.0 if unit == "ms" else 100.0
    table = {name: round(seconds * scale / per, 3) for name, seconds in
             sorted(spent.items(), key=lambda item: -item[1])}
    table["total"] = round(sum(spent.values()) * scale / per, 3)
    return table


def print_table(title: str, columns: dict[str, dict[str, float]]) -> None:
    """One line per process, one column per figure (heading -> name -> value), in the first column's order."""
    print(title)
    print(f"  {'':<20}" + "".join(f"{heading:>14}" for heading in columns))
    first = next(iter(columns.values()))
    for name in first:
        print(f"  {name:<20}" + "".join(f"{column.get(name, float('nan')):14.3f}" for column in columns.values()))
