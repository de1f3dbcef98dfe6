"""The dashboard on the large fixture: the CPU and memory of a full refresh of the Overview and Lag screens,
how fast a key changes the screen while refreshes run, and the idle CPU at the 2 s refresh.

Run by hand: ``python tests/bench/bench_console_tui.py [--refreshes 10] [--presses 100] [--idle-s 30]``.

The stand-in API server serves the large fixture (100 Deployments, 1,000 pods, their ReplicaSets and Events)
from a separate process; a real tansu holds 300 partitions (30 topics x 10) with 50 consumer groups behind
(tests/bench/bench_console_lag.py's set-up); a real Prometheus evaluates the alert rules (when its binary is
installed); the Loki stand-in answers the log queries. This process is the console: the dashboard App from
`make_dashboard`, headless (Textual's test driver), 160x45.

- full refresh: every area the Overview reads refreshed (workloads, lag, dead letters, alerts, events: the
  I/O and the model), then the Overview and the Lag screens redrawn and painted; process CPU (every thread)
  per round, `--refreshes` rounds after one to warm up. Target <= 250 ms CPU, <= 150 MB RSS.
- key presses: the live App (refresh workers every 2 s), `--presses` keys alternating between two screens;
  the time from the key to the other screen mounted and painted. Target p99 <= 50 ms.
- idle: the live App on the Overview, untouched for `--idle-s`; process CPU over wall time. Target <= 5 %.
Prints the figures and writes tests/bench/results/console_tui.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from console.sandbox.broker import start_tansu
from console.target import ClusterTarget
from console.tui.app import make_dashboard
from console.tui.screens.lag import LagScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.screens.pods import PodsScreen
from tests.bench.bench_console_lag import populate
from tests.bench.bench_console_status import rss_mb, serve_cluster, serve_prometheus, stop_process
from tests.console.observability.loki_standin import running_loki

RESULTS = REPO / "tests" / "bench" / "results" / "console_tui.json"
SIZE = (160, 45)
OVERVIEW_AREAS = ("workloads", "lag", "dead_letters", "alerts", "events")
TARGETS = {"refresh_cpu_ms": 250.0, "rss_mb": 150.0, "key_p99_ms": 50.0, "idle_cpu_percent": 5.0}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def full_refreshes(target: ClusterTarget, rounds: int) -> dict[str, Any]:
    """Refresh every area of the Overview, then draw the Overview and the Lag screens: CPU per round."""
    app = make_dashboard(target, live=False)
    cpu: list[float] = []
    refresh_cpu: list[float] = []
    draw_cpu: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        for index in range(rounds + 1):
            start = time.process_time()
            for area in OVERVIEW_AREAS:
                outcome = getattr(app.hub, f"refresh_{area}")()
                assert outcome in ("ok", "failed", "absent"), (area, outcome)
            refreshed = time.process_time()
            await pilot.press("1")
            assert isinstance(app.screen, OverviewScreen)
            app.screen.redraw()
            await pilot.pause()
            await pilot.press("2")
            assert isinstance(app.screen, LagScreen)
            app.screen.redraw()
            await pilot.pause()
            done = time.process_time()
            if index:  # the first round lists every cache and connects every client
                cpu.append((done - start) * 1000)
                refresh_cpu.append((refreshed - start) * 1000)
                draw_cpu.append((done - refreshed) * 1000)
        snapshot = app.hub.snapshot()
        counts = {"pods": len(snapshot.workloads.value.pods) if snapshot.workloads.value else 0,
                  "deployments": len(snapshot.workloads.value.rollouts) if snapshot.workloads.value else 0,
                  "groups": len(snapshot.lag.value.groups) if snapshot.lag.value else 0,
                  "partitions": len({p.tp for g in snapshot.lag.value.groups for p in g.partitions})
                  if snapshot.lag.value else 0,
                  "sources": {v.name: v.state for v in snapshot.areas()}}
        rss = rss_mb()
        await pilot.press("q")
    return {"rounds": rounds, "cpu_ms": summary(cpu), "refresh_cpu_ms": summary(refresh_cpu),
            "draw_cpu_ms": summary(draw_cpu), "rss_mb": round(rss, 1), "counts": counts}


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 1), "p99": round(percentile(values, 0.99), 1),
            "max": round(max(values), 1)}


async def key_presses(target: ClusterTarget, presses: int) -> dict[str, Any]:
    """The live App: keys alternate between Pods (1,000 rows) and Overview while the workers refresh."""
    app = make_dashboard(target, refresh_s=2.0)
    latencies = []
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 120
        while not (app.hub.view("workloads").ok and app.hub.view("lag").ok) and time.monotonic() < deadline:
            await pilot.pause(0.5)
        refreshes_before = app.hub.view("lag").checked_at
        for index in range(presses):
            key, wanted = ("5", PodsScreen) if index % 2 == 0 else ("1", OverviewScreen)
            start = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()  # mounted, drawn from the hub and painted
            latencies.append((time.perf_counter() - start) * 1000)
            assert isinstance(app.screen, wanted), app.screen
            await asyncio.sleep(0.05)
        refreshed = app.hub.view("lag").checked_at != refreshes_before
        await pilot.press("q")
    return {"presses": presses, "ms": summary(latencies), "refreshes_ran_meanwhile": refreshed}


async def idle(target: ClusterTarget, seconds: float) -> dict[str, Any]:
    app = make_dashboard(target, refresh_s=2.0)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 120
        while not app.hub.view("lag").ok and time.monotonic() < deadline:
            await pilot.pause(0.5)
        await asyncio.sleep(4)  # past the first rounds (cold lists and connections)
        cpu0, wall0 = time.process_time(), time.monotonic()
        lag = app.hub.view("lag").value
        samples0 = lag.samples if lag else 0
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        lag = app.hub.view("lag").value
        samples = (lag.samples if lag else 0) - samples0
        await pilot.press("q")
    return {"seconds": round(wall, 1), "cpu_s": round(cpu, 2), "cpu_percent": round(100 * cpu / wall, 2),
            "lag_refreshes": samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=10)
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument("--idle-s", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        kubeconfig = work / "kubeconfig"
        cluster = serve_cluster(kubeconfig)
        stack.callback(stop_process, cluster)
        broker = start_tansu(work / "broker")
        stack.callback(broker.stop)
        populate(broker.bootstrap, groups=50, topics=30, partitions=10)
        prometheus, prometheus_url = serve_prometheus(work / "prometheus")
        if prometheus is not None:
            stack.callback(stop_process, prometheus)
        loki_url, _loki = stack.enter_context(running_loki())
        os.environ.update({"KUBECONFIG": str(kubeconfig), "TODO_SANDBOX_DIR": str(work / "no-sandbox"),
                           "TODO_CONSOLE_KAFKA_BOOTSTRAP": broker.bootstrap,
                           "TODO_CONSOLE_PROMETHEUS_URL": prometheus_url, "TODO_CONSOLE_LOKI_URL": loki_url})
        target = ClusterTarget(context=None, kubeconfig=kubeconfig, namespace="todo-app", in_cluster=False)
        rss_before = rss_mb()
        refresh = asyncio.run(full_refreshes(target, args.refreshes))
        keys = asyncio.run(key_presses(target, args.presses))
        idling = asyncio.run(idle(target, args.idle_s))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result: dict[str, Any] = {
        "benchmark": "console_tui", "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "python": platform.python_version(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(), "prometheus": "real" if prometheus else "absent",
        "full_refresh": refresh, "key_press": keys, "idle": idling,
        "rss_mb": {"before_app": round(rss_before, 1), "after_refreshes": refresh["rss_mb"], "peak": round(peak, 1)},
        "targets": TARGETS,
    }
    result["meets_targets"] = (refresh["cpu_ms"]["max"] <= TARGETS["refresh_cpu_ms"]
                               and result["rss_mb"]["peak"] <= TARGETS["rss_mb"]
                               and keys["ms"]["p99"] <= TARGETS["key_p99_ms"]
                               and idling["cpu_percent"] <= TARGETS["idle_cpu_percent"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    c = refresh["counts"]
    print(f"fixture: {c['deployments']} Deployments, {c['pods']} pods; {c['groups']} groups on {c['partitions']} "
          f"partitions; Prometheus {result['prometheus']}; sources {c['sources']}")
    print(f"full refresh of the Overview and Lag screens: CPU p50 {refresh['cpu_ms']['p50']} ms, max "
          f"{refresh['cpu_ms']['max']} ms (target <= {TARGETS['refresh_cpu_ms']:g}): refresh p50 "
          f"{refresh['refresh_cpu_ms']['p50']} ms + draw p50 {refresh['draw_cpu_ms']['p50']} ms")
    print(f"RSS {refresh['rss_mb']} MB after the refreshes, peak {result['rss_mb']['peak']} MB "
          f"(target <= {TARGETS['rss_mb']:g}); {result['rss_mb']['before_app']} MB before the App")
    print(f"key press to the other screen painted, refreshes running: p50 {keys['ms']['p50']} ms, p99 "
          f"{keys['ms']['p99']} ms, max {keys['ms']['max']} ms over {keys['presses']} presses "
          f"(target p99 <= {TARGETS['key_p99_ms']:g})")
    print(f"idle at the 2 s refresh: {idling['cpu_percent']} % of one core over {idling['seconds']} s "
          f"({idling['lag_refreshes']} lag refreshes; target <= {TARGETS['idle_cpu_percent']:g} %)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; results in {RESULTS}")
    return 0 if result["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
