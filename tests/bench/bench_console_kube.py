"""The Kubernetes part of `status` on a 1,000-pod, 100-Deployment cluster, once the watch caches are warm.

Run by hand: ``python tests/bench/bench_console_kube.py [--builds 20]``. The stand-in API server serves
the large fixture (the prod overlay's platform with 100 Deployments of 10 pods, their ReplicaSets and
Events) from a separate process, so this process holds only what the console holds: the official
client, the caches and the models. Once every cache has listed and is watching, it builds the Kubernetes
part of the status (every rollout, every pod summary with its events, every platform resource) from
memory: once with nothing seen before (every pod summary computed), then `--builds` times as a refresh
does (only what the watch changed is recomputed), reading the process CPU counters (all threads, the
caches' watch threads included) and RSS around each build. Targets: <= 250 ms CPU per build (the first
one included), <= 150 MB RSS.
Prints the figures and writes tests/bench/results/console_kube.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from console.sources.kube import KINDS, KubeSource
from console.target import ClusterTarget

RESULTS = REPO / "tests" / "bench" / "results" / "console_kube.json"
CPU_TARGET_MS = 250.0
RSS_TARGET_MB = 150.0


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def serve(kubeconfig: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.utils.kube_apiserver", "--fixture", "large",
                             "--kubeconfig", str(kubeconfig)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("serving"):
        proc.kill()
        raise SystemExit(f"the stand-in did not start: {line!r}")
    return proc


def build(source: KubeSource) -> dict[str, int]:
    """The Kubernetes part of the status: what `status` and the Overview screen read."""
    rollouts = source.rollouts()
    pods = source.pods()
    report = source.resources()
    return {"rollouts": len(rollouts), "pods": len(pods), "resources": len(report.resources),
            "problems": sum(r.problem for r in rollouts) + sum(p.problem for p in pods) + report.problem}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        started = time.monotonic()
        server = serve(kubeconfig)
        fixture_s = time.monotonic() - started
        try:
            rss_before = rss_mb()
            source = KubeSource(ClusterTarget(context=None, kubeconfig=kubeconfig, namespace="todo-app",
                                              in_cluster=False))
            cpu0, wall0 = time.process_time(), time.monotonic()
            source.ensure(*KINDS, timeout_s=120)
            warm_cpu_s, warm_s = time.process_time() - cpu0, time.monotonic() - wall0
            cpu0, wall0 = time.process_time(), time.perf_counter()
            counts = build(source)  # every pod summary computed: nothing seen before
            cold_cpu_ms, cold_wall_ms = (time.process_time() - cpu0) * 1000, (time.perf_counter() - wall0) * 1000
            cpu_ms, wall_ms, rss = [], [], []
            for _ in range(args.builds):
                cpu0, wall0 = time.process_time(), time.perf_counter()
                counts = build(source)
                cpu_ms.append((time.process_time() - cpu0) * 1000)
                wall_ms.append((time.perf_counter() - wall0) * 1000)
                rss.append(rss_mb())
            cached = {name: len(source.cache(name).items()) for name in KINDS}
            health = {name: h.ok for name, h in source.health().items()}
            source.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result: dict[str, Any] = {
        "benchmark": "console_kube", "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "python": platform.python_version(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(), "builds": args.builds, "fixture_s": round(fixture_s, 1),
        "cached_objects": cached, "built": counts, "caches_healthy": all(health.values()),
        "warm_up_s": round(warm_s, 2), "warm_up_cpu_s": round(warm_cpu_s, 2),
        "first_build_ms": {"cpu": round(cold_cpu_ms, 1), "wall": round(cold_wall_ms, 1)},
        "cpu_ms": {"p50": round(statistics.median(cpu_ms), 1), "max": round(max(cpu_ms), 1),
                   "min": round(min(cpu_ms), 1)},
        "wall_ms": {"p50": round(statistics.median(wall_ms), 1), "max": round(max(wall_ms), 1)},
        "rss_mb": {"before_client": round(rss_before, 1), "after": round(max(rss), 1), "peak": round(peak_mb, 1)},
        "targets": {"cpu_ms": CPU_TARGET_MS, "rss_mb": RSS_TARGET_MB},
    }
    result["meets_targets"] = (result["cpu_ms"]["max"] <= CPU_TARGET_MS and cold_cpu_ms <= CPU_TARGET_MS
                               and result["rss_mb"]["peak"] <= RSS_TARGET_MB)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"cached: {cached['deployments']} Deployments, {cached['pods']} pods, {cached['replicasets']} ReplicaSets, "
          f"{cached['events']} events (warm-up {warm_s:.1f}s, {warm_cpu_s:.1f}s CPU)")
    print(f"built: {counts}")
    print(f"first build (every pod summary computed): {cold_cpu_ms:.1f} ms CPU, {cold_wall_ms:.1f} ms wall")
    print(f"CPU per refresh build: p50 {result['cpu_ms']['p50']} ms, max {result['cpu_ms']['max']} ms "
          f"(target <= {CPU_TARGET_MS:g}); wall p50 {result['wall_ms']['p50']} ms")
    print(f"RSS: {result['rss_mb']['after']} MB after the builds, peak {result['rss_mb']['peak']} MB "
          f"(target <= {RSS_TARGET_MB:g}); {result['rss_mb']['before_client']} MB before the client loaded")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; results in {RESULTS}")
    return 0 if result["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
