"""A full `status` build on a 1,000-pod, 100-Deployment cluster once the watch caches are warm, and what a
`todo-console` command costs in imports.

Run by hand: ``python tests/bench/bench_console_status.py [--builds 10] [--runs 5]``.

The stand-in API server serves the large fixture (the prod overlay's platform with 100 Deployments of 10 pods,
their ReplicaSets and Events) from a separate process; a real tansu holds kustomize/base's topics with the
platform's consumer groups behind on task-events; a real Prometheus evaluates the platform's alert rules; the
Loki stand-in answers the log query. This process is the console: one hub (console.live), warmed by one
refresh of every area (every cache listed and watching, every client connected), then `--builds` full status
builds, each what `todo-console status --samples 1` does after its imports: every area refreshed side by side
(Kubernetes from memory; Kafka lag and dead letters, Prometheus alerts and Loki over the wire), the findings,
the overview, the readable text and the JSON document. The process CPU counters (every thread) and RSS are read
around each build. Targets: <= 250 ms CPU per build, <= 150 MB RSS.

Then the command itself, as separate processes (CPU of the child, user + system): `--help` of several commands
(the parser and the imports, nothing else) on this branch and on the commit it started from, and a whole
`todo-console status --samples 1 --json` against the same cluster (imports, listing 14 kinds cold, every source).
Prints the figures and writes tests/bench/results/console_status.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, redirect_stdout
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from console.commands.status import AREAS, readable
from console.live.hub import make_hub, refresh_all
from console.model.kafka import OutgoingRecord, TopicPartition
from console.output import emit_json
from console.sandbox import monitoring
from console.sandbox.broker import start_tansu
from console.sandbox.manifests import load_manifests, topics_to_create
from console.sandbox.ports import free_port
from console.sandbox.topics import ensure_topics
from console.sources.kafka import KafkaSource
from console.target import ClusterTarget
from tests.console.observability.loki_standin import running_loki

RESULTS = REPO / "tests" / "bench" / "results" / "console_status.json"
CPU_TARGET_MS = 250.0
RSS_TARGET_MB = 150.0
BASELINE = "7424598"  # the commit this branch started from: its commands before the import cuts
HELP_COMMANDS = ("rollout", "lag", "dlq", "pods", "alerts")


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def serve_cluster(kubeconfig: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.utils.kube_apiserver", "--fixture", "large",
                             "--kubeconfig", str(kubeconfig)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("serving"):
        proc.kill()
        raise SystemExit(f"the stand-in did not start: {line!r}")
    return proc


def serve_prometheus(root: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    """A real Prometheus with the platform's rules and nothing to scrape, or (None, a closed port) without one."""
    binary = monitoring.prometheus_binary()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if binary is None:
        return None, url
    config = monitoring.write_config(root, [], interval_s=1.0)
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    import urllib.request
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2):  # noqa: S310 - loopback, ours
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("Prometheus did not become ready")


def populate_kafka(bootstrap: str) -> None:
    """kustomize/base's topics; 60 records on task-events, the worker and audit groups 20 behind per partition."""
    ensure_topics(bootstrap, topics_to_create(load_manifests(REPO / "kustomize" / "base")))
    with KafkaSource(bootstrap) as kafka:
        for p in range(3):
            kafka.produce("task-events", [OutgoingRecord(b"%d" % i, partition=p) for i in range(20)])
        for group in ("worker", "audit"):
            kafka.commit(group, {TopicPartition("task-events", p): 0 for p in range(3)})


def build(hub: Any) -> dict[str, Any]:
    """One full status build: every area refreshed, judged, summed up and rendered both ways."""
    refresh_all(hub, AREAS)
    summary = hub.overview()
    text = readable(summary)
    with redirect_stdout(io.StringIO()):
        emit_json("status", summary.to_dict(), target=hub.target.label)
    return {"findings": len(summary.findings), "services": len(summary.services or ()), "text_lines": text.count("\n"),
            "sources": {v.name: v.state for v in summary.sources}}


def child_cpu_ms(argv: list[str], env: dict[str, str], cwd: Path = REPO) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000


def command_costs(env: dict[str, str], runs: int, workdir: Path) -> dict[str, Any]:
    """CPU per command process: this branch's and the baseline's `--help`, this branch's `status`."""
    baseline = workdir / "baseline"
    baseline.mkdir()
    archive = subprocess.run(["git", "archive", BASELINE, "console"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
    costs: dict[str, Any] = {"help": {}}
    for command in HELP_COMMANDS:
        ours = [child_cpu_ms([sys.executable, "-m", "console.cli", command, "--help"], env) for _ in range(runs)]
        # The baseline's console package first on the path (its own modules, this environment's libraries).
        theirs = [child_cpu_ms([sys.executable, "-m", "console.cli", command, "--help"],
                               {**env, "PYTHONPATH": str(baseline)}, cwd=baseline) for _ in range(runs)]
        costs["help"][command] = {"branch_ms": round(statistics.median(ours)), "baseline_ms": round(statistics.median(theirs))}
    costs["help"]["status"] = {"branch_ms": round(statistics.median(
        child_cpu_ms([sys.executable, "-m", "console.cli", "status", "--help"], env) for _ in range(runs)))}
    status = [child_cpu_ms([sys.executable, "-m", "console.cli", "status", "--samples", "1", "--json"], env)
              for _ in range(runs)]
    costs["status_command_ms"] = {"p50": round(statistics.median(status)), "max": round(max(status))}
    importtime = subprocess.run([sys.executable, "-X", "importtime", "-c", "import console.commands.status"],
                                env=env, cwd=REPO, capture_output=True, text=True, check=False).stderr
    costs["status_module_import_us"] = max(int(line.split("|")[1]) for line in importtime.splitlines()
                                           if line.startswith("import time:") and line.split("|")[1].strip().isdigit())
    return costs


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Stop a server the benchmark started, waiting so its port and files are released before the temp dir goes."""
    process.terminate()
    process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="processes per command for the import figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        kubeconfig = work / "kubeconfig"
        started = time.monotonic()
        cluster = serve_cluster(kubeconfig)
        stack.callback(stop_process, cluster)
        fixture_s = time.monotonic() - started
        broker = start_tansu(work / "broker")
        stack.callback(broker.stop)
        populate_kafka(broker.bootstrap)
        prometheus, prometheus_url = serve_prometheus(work / "prometheus")
        if prometheus is not None:
            stack.callback(stop_process, prometheus)
        loki_url, _loki = stack.enter_context(running_loki())
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "TODO_SANDBOX_DIR": str(work / "no-sandbox"),
               "TODO_CONSOLE_KAFKA_BOOTSTRAP": broker.bootstrap, "TODO_CONSOLE_PROMETHEUS_URL": prometheus_url,
               "TODO_CONSOLE_LOKI_URL": loki_url}
        os.environ.update(env)

        rss_before = rss_mb()
        hub = make_hub(ClusterTarget(context=None, kubeconfig=kubeconfig, namespace="todo-app", in_cluster=False))
        cpu0, wall0 = time.process_time(), time.monotonic()
        first = build(hub)  # cold: imports, 14 lists, every connection, every pod summary computed
        cold_cpu_ms, cold_wall_ms = (time.process_time() - cpu0) * 1000, (time.monotonic() - wall0) * 1000
        cpu_ms, wall_ms, rss = [], [], []
        counts = first
        for _ in range(args.builds):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            counts = build(hub)
            cpu_ms.append((time.process_time() - cpu0) * 1000)
            wall_ms.append((time.perf_counter() - wall0) * 1000)
            rss.append(rss_mb())
        workloads = hub.view("workloads").value
        pods = len(workloads.pods) if workloads is not None else 0
        hub.close()
        costs = command_costs(env, args.runs, work)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result: dict[str, Any] = {
        "benchmark": "console_status", "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "python": platform.python_version(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(), "builds": args.builds, "fixture_s": round(fixture_s, 1),
        "pods": pods, "built": counts, "prometheus": "real" if prometheus is not None else "absent",
        "first_build_ms": {"cpu": round(cold_cpu_ms, 1), "wall": round(cold_wall_ms, 1)},
        "cpu_ms": {"p50": round(statistics.median(cpu_ms), 1), "max": round(max(cpu_ms), 1),
                   "min": round(min(cpu_ms), 1)},
        "wall_ms": {"p50": round(statistics.median(wall_ms), 1), "max": round(max(wall_ms), 1)},
        "rss_mb": {"before_hub": round(rss_before, 1), "after": round(max(rss), 1), "peak": round(peak_mb, 1)},
        "commands": costs, "targets": {"cpu_ms": CPU_TARGET_MS, "rss_mb": RSS_TARGET_MB},
    }
    result["meets_targets"] = result["cpu_ms"]["max"] <= CPU_TARGET_MS and result["rss_mb"]["peak"] <= RSS_TARGET_MB
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"cluster: {pods} pods (fixture served in {fixture_s:.1f}s); Kafka tansu, Prometheus {result['prometheus']}, "
          f"Loki stand-in; sources after the builds: {counts['sources']}")
    print(f"first build (cold: imports, lists, connections): {cold_cpu_ms:.0f} ms CPU, {cold_wall_ms:.0f} ms wall")
    print(f"full status build, warm (every area refreshed, findings, overview, text and JSON): CPU p50 "
          f"{result['cpu_ms']['p50']} ms, max {result['cpu_ms']['max']} ms (target <= {CPU_TARGET_MS:g}); wall p50 "
          f"{result['wall_ms']['p50']} ms")
    print(f"RSS: {result['rss_mb']['after']} MB after the builds, peak {result['rss_mb']['peak']} MB "
          f"(target <= {RSS_TARGET_MB:g}); {result['rss_mb']['before_hub']} MB before the hub")
    for command, figures in costs["help"].items():
        baseline = f", baseline {figures['baseline_ms']} ms" if "baseline_ms" in figures else ""
        print(f"todo-console {command} --help: {figures['branch_ms']} ms CPU{baseline}")
    print(f"todo-console status --samples 1 --json (a whole process, cold caches): CPU p50 "
          f"{costs['status_command_ms']['p50']} ms; importing its module {costs['status_module_import_us'] / 1000:.0f} ms")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; results in {RESULTS}")
    return 0 if result["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
