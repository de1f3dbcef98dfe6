"""The task API under 100 concurrent users on the sandbox (SC-006): throughput, latency, errors.

Run by hand: ``python tests/bench/bench_api_load.py [--users 100] [--seconds 30]``.
Starts the real sandbox in a fresh directory (the same code as `todo-console sandbox up`),
gives each simulated user a dev token of their own, and has every user loop over a realistic
mix (25 % create, 45 % list, 15 % get, 10 % update with If-Match, 5 % complete), pausing a
random think time between actions (exponential, mean `--think-ms`, 1 s by default: 100 people
using the app). `--think-ms 0` keeps 100 requests in flight at all times: that measures the
capacity of the whole sandbox on this machine (every write fans out to three events, six
sidecar deliveries and four consumers on the same two cores, load generator included).
Target on the sandbox: no errors, p99 <= 200 ms for reads and for writes.

Beside latency it measures what the work costs, from each process's own CPU counters
(process_cost.py), which hold on a shared machine where latency does not:
- idle: after `--settle-seconds`, each process's CPU (% of one core) and RSS over `--idle-seconds`
  with no traffic;
- CPU milliseconds per user action, for the whole sandbox and per process (backend, each sidecar,
  the broker, each consumer, PostgreSQL or the local S3 when they run, the supervisor, Prometheus),
  counted from the first action until the pipeline has drained what the run published; gross, and
  net of the idle rate over the same window; the load generator's own CPU apart;
- the events the run published (the topics' watermarks) and the sidecars' and broker's CPU per event,
  beside the raw broker floor (broker_floor.py): the same events through the broker with librdkafka.
`--db postgres` runs the sandbox on its own PostgreSQL, as the cluster does, and counts the sessions
the services opened over the run (pg_stat_database): each one forks a server process, so a pool that
closes and reopens connections under load shows there, not in any Python profile.
Prints the figures and writes tests/bench/results/api_load_<db>_think<ms>ms.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from console.sandbox import catalog, control, postgres
from console.sandbox.manifests import load_manifests, topics_to_create
from tests.bench import broker_floor, process_cost
from tests.bench.sandbox_run import SandboxUnavailable, backend_url, fresh_sandbox

RESULTS_DIR = REPO / "tests" / "bench" / "results"
READS = {"list", "get"}
MIX = [("create", 25), ("list", 45), ("get", 15), ("update", 10), ("complete", 5)]
EXPECTED = {"create": {201}, "list": {200}, "get": {200}, "update": {200, 412}, "complete": {200, 409}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Answer:
    status: int
    body: bytes


async def user(client: aiohttp.ClientSession, api: str, token: str, until: float,
               samples: dict[str, list[float]], errors: dict[str, int], rng: random.Random,
               think_s: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    mine: dict[str, int] = {}  # task id -> version last seen
    ops = [op for op, weight in MIX for _ in range(weight)]
    while time.monotonic() < until:
        if think_s:
            await asyncio.sleep(rng.expovariate(1 / think_s))
        op = rng.choice(ops) if mine else "create"
        started = time.perf_counter()
        try:
            answer = await one_request(client, api, op, headers, mine, rng)
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors[f"{op} {type(exc).__name__}"] += 1
            continue
        samples[op].append((time.perf_counter() - started) * 1000)
        if answer.status not in EXPECTED[op]:
            errors[f"{op} {answer.status}"] += 1
        elif answer.status in (200, 201) and b'"version"' in answer.body:
            body = json.loads(answer.body)
            if "id" in body:
                mine[body["id"]] = body["version"]


async def one_request(client: aiohttp.ClientSession, api: str, op: str, headers: dict[str, str],
                      mine: dict[str, int], rng: random.Random) -> Answer:
    if op == "create":
        due = f"2026-12-{rng.randint(1, 28):02d}T09:00:00+00:00"
        request = client.post(f"{api}/api/tasks", headers=headers,
                              json={"title": "load", "due_at": due, "tags": ["load"]})
    elif op == "list":
        request = client.get(f"{api}/api/tasks", headers=headers, params={"status": "pending", "limit": "20"})
    else:
        task_id = rng.choice(list(mine))
        if op == "get":
            request = client.get(f"{api}/api/tasks/{task_id}", headers=headers)
        elif op == "update":
            request = client.patch(f"{api}/api/tasks/{task_id}", json={"priority": "high"},
                                   headers={**headers, "If-Match": f'"{mine[task_id]}"'})
        else:
            request = client.post(f"{api}/api/tasks/{task_id}/complete", headers=headers)
    async with request as response:
        return Answer(response.status, await response.read())


class Meter:
    """CPU samples of every sandbox process (and of this load generator) around the users' phase."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups
        self.samples: list[process_cost.Sample] = []

    def mark(self) -> None:
        self.samples.append(process_cost.sample(self.groups))


async def run_load(api: str, users: int, seconds: float, think_s: float, meter: Meter | None = None) -> dict[str, Any]:
    # aiohttp, not httpx: with 100 users in flight httpx's connection pool, on the same two cores,
    # held requests for seconds on the client side (p50 1.1 s seen by the client while the backend
    # logged 48 ms), so it measured itself rather than the API.
    connector = aiohttp.TCPConnector(limit=users, keepalive_timeout=2.0)  # under uvicorn's 5 s keep-alive
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        tokens = []
        for n in range(users):
            async with client.post(f"{api}/api/dev/token", params={"user": f"load-user-{n}"}) as minted:
                tokens.append((await minted.json())["access_token"])
        samples: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        if meter:
            meter.mark()
        started = time.monotonic()
        await asyncio.gather(*(user(client, api, tokens[n], started + seconds, samples, errors,
                                    random.Random(n), think_s) for n in range(users)))
        elapsed = time.monotonic() - started
        if meter:
            meter.mark()
    reads = [v for op, vs in samples.items() if op in READS for v in vs]
    writes = [v for op, vs in samples.items() if op not in READS for v in vs]
    total = len(reads) + len(writes)
    return {
        "requests": total,
        "seconds_measured": round(elapsed, 2),
        "throughput_rps": round(total / elapsed, 1),
        "errors": dict(errors),
        "error_rate": round(sum(errors.values()) / max(total, 1), 5),
        "reads_ms": {"p50": round(percentile(reads, 50), 1), "p99": round(percentile(reads, 99), 1)},
        "writes_ms": {"p50": round(percentile(writes, 50), 1), "p99": round(percentile(writes, 99), 1)},
        "by_op": {op: {"n": len(vs), "p50": round(statistics.median(vs), 1), "p99": round(percentile(vs, 99), 1)}
                  for op, vs in sorted(samples.items())},
    }


def measure_idle(groups: dict[str, int], settle_s: float, idle_s: float) -> dict[str, Any]:
    """CPU per second (% of one core) and RSS of each process with no traffic, after `settle_s`."""
    time.sleep(settle_s)
    before = process_cost.sample(groups)
    time.sleep(idle_s)
    after = process_cost.sample(groups)
    spent = process_cost.delta(before, after)
    return {"seconds": round(after.at - before.at, 1), "load_average": process_cost.load_average(),
            "cpu_percent_of_core": process_cost.cost_table(spent, after.at - before.at, "%"),
            "rss_mb": {**{k: round(v, 1) for k, v in sorted(after.rss_mb.items(), key=lambda kv: -kv[1])},
                       "total": round(sum(after.rss_mb.values()), 1)}}


def drain(groups: dict[str, int], idle_total_cores: float, limit_s: float = 30.0) -> process_cost.Sample:
    """After the users stop, the consumers still work off what the run published: wait until the whole
    sandbox is back near its idle rate (or `limit_s`), so that work counts towards the actions."""
    previous = process_cost.sample(groups)
    deadline = previous.at + limit_s
    while previous.at < deadline:
        time.sleep(1.0)
        current = process_cost.sample(groups)
        rate = sum(process_cost.delta(previous, current).values()) / (current.at - previous.at)
        previous = current
        if rate <= idle_total_cores * 1.5 + 0.05:
            break
    return previous


def load_cost(meter: Meter, drained: process_cost.Sample, requests: int, idle: dict[str, Any],
              events: int) -> dict[str, Any]:
    """CPU ms per user action, gross (everything the processes spent from the first action until
    the pipeline was drained) and net of what they would have spent idle over the same time."""
    start, users_done = meter.samples
    spent = process_cost.delta(start, drained)
    window = drained.at - start.at
    idle_rate = {k: v / 100 for k, v in idle["cpu_percent_of_core"].items() if k != "total"}
    net = {k: max(0.0, v - idle_rate.get(k, 0.0) * window) for k, v in spent.items()}
    during = process_cost.delta(start, users_done)
    sidecars_and_broker = sum(v for k, v in net.items() if k.endswith("-dapr") or k == "broker")
    return {
        "window_s": round(window, 1), "drain_s": round(drained.at - users_done.at, 1),
        "load_average": process_cost.load_average(),
        "cpu_ms_per_action": process_cost.cost_table(spent, requests, "ms"),
        "cpu_ms_per_action_net_of_idle": process_cost.cost_table(net, requests, "ms"),
        "cores_used_while_users_ran": round(sum(during.values()) / (users_done.at - start.at), 2),
        "events_published": events,
        "sidecars_and_broker_cpu_ms_per_event": round(sidecars_and_broker * 1000 / max(events, 1), 3),
        "broker_cpu_ms_per_event": round(net.get("broker", 0.0) * 1000 / max(events, 1), 3),
    }


def broker_floor_cost(bootstrap: str, broker_pid: int, events: int, rate: float, idle_broker_cores: float,
                      size: int) -> dict[str, Any]:
    """The run's events again, through the broker alone with librdkafka (see broker_floor.py)."""
    messages = max(50, min(events, round(rate * 10)))  # the run's rate, for at most 10 s
    before = process_cost.sample({"broker": broker_pid})
    floor = broker_floor.run(bootstrap, messages, rate, size)
    after = process_cost.sample({"broker": broker_pid})
    broker_s = max(0.0, process_cost.delta(before, after)["broker"] - idle_broker_cores * floor.seconds)
    return {"messages": messages, "event_bytes": size, "rate_per_s": round(rate, 1), "readers": 2,
            "broker_cpu_ms_per_event": round(broker_s * 1000 / messages, 3),
            "client_cpu_ms_per_event": round(floor.client_cpu_s * 1000 / messages, 3)}


def postgres_activity(state: dict[str, Any]) -> dict[str, int] | None:
    """Sessions ever opened and transactions committed on the sandbox's PostgreSQL, and its current
    client sessions (None on SQLite). Read on a session of its own, which the counts include."""
    database = (state.get("processes") or {}).get("postgres")
    if not database:
        return None
    import psycopg

    with psycopg.connect(postgres.url(int(database["port"]), "postgres").replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT (SELECT sum(sessions) FROM pg_stat_database),"
                           " (SELECT sum(xact_commit) FROM pg_stat_database),"
                           " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')").fetchone()
    assert row is not None
    return {"sessions_opened": int(row[0] or 0), "commits": int(row[1] or 0), "client_sessions": int(row[2])}


def postgres_churn(before: dict[str, int] | None, after: dict[str, int] | None, requests: int) -> dict[str, Any] | None:
    if before is None or after is None:
        return None
    opened = after["sessions_opened"] - before["sessions_opened"] - 1  # less the reading session itself
    return {"sessions_opened": opened, "sessions_per_100_actions": round(opened * 100 / max(requests, 1), 2),
            "commits_per_action": round((after["commits"] - before["commits"]) / max(requests, 1), 2),
            "client_sessions_before": before["client_sessions"] - 1, "client_sessions_after": after["client_sessions"] - 1}


def run_on_sandbox(args: argparse.Namespace, think_s: float) -> dict[str, Any]:
    with fresh_sandbox("api-load-", db=args.db) as (layout, result):
        state = control.read_state(layout) or result.state
        groups = process_cost.sandbox_groups(state)
        idle = measure_idle(groups, args.settle_seconds, args.idle_seconds)
        bootstrap = state["broker"]["bootstrap"]
        topics = [t.name for t in topics_to_create(load_manifests(catalog.MANIFESTS_DIR))]
        records_before = broker_floor.watermarks(bootstrap, topics)
        meter = Meter({**groups, "load generator": os.getpid()})
        activity_before = postgres_activity(state)
        figures = asyncio.run(run_load(backend_url(result), args.users, args.seconds, think_s, meter))
        drained = process_cost.sample(meter.groups) if args.no_drain else \
            drain(meter.groups, idle["cpu_percent_of_core"]["total"] / 100)
        events = broker_floor.watermarks(bootstrap, topics) - records_before
        churn = postgres_churn(activity_before, postgres_activity(state), figures["requests"])
        cost = load_cost(meter, drained, figures["requests"], idle, events)
        cost["cpu_ms_per_action"].pop("load generator", None)  # not the sandbox: reported on its own
        generator = process_cost.delta(meter.samples[0], drained).get("load generator", 0.0)
        cost["load_generator_cpu_ms_per_action"] = round(generator * 1000 / max(figures["requests"], 1), 3)
        for table in ("cpu_ms_per_action", "cpu_ms_per_action_net_of_idle"):
            cost[table].pop("load generator", None)
            cost[table]["total"] = round(sum(v for k, v in cost[table].items() if k != "total"), 3)
        floor = None
        if not args.no_floor and events:
            floor = broker_floor_cost(bootstrap, groups["broker"], events, events / cost["window_s"],
                                      idle["cpu_percent_of_core"].get("broker", 0.0) / 100,
                                      broker_floor.mean_size(bootstrap, "task-events"))
        return {**figures, "idle": idle, "cost": cost, "broker_floor": floor, "postgres": churn}


def print_cost(summary: dict[str, Any]) -> None:
    idle, cost, floor = summary["idle"], summary["cost"], summary["broker_floor"]
    process_cost.print_table(f"idle ({idle['seconds']} s, load average {idle['load_average']})",
                             {"% of a core": idle["cpu_percent_of_core"], "RSS MiB": idle["rss_mb"]})
    process_cost.print_table(f"CPU ms per user action ({summary['requests']} actions, {cost['window_s']} s "
                             f"incl. {cost['drain_s']} s drain, load average {cost['load_average']})",
                             {"net of idle": cost["cpu_ms_per_action_net_of_idle"],
                              "gross": cost["cpu_ms_per_action"]})
    print(f"  load generator {cost['load_generator_cpu_ms_per_action']} ms per action; the sandbox used "
          f"{cost['cores_used_while_users_ran']} cores while the users ran")
    print(f"events published {cost['events_published']}: sidecars + broker {cost['sidecars_and_broker_cpu_ms_per_event']}"
          f" ms CPU per event, broker {cost['broker_cpu_ms_per_event']} ms (net of idle)")
    if summary.get("postgres"):
        pg = summary["postgres"]
        print(f"PostgreSQL: {pg['sessions_opened']} sessions opened during the run ({pg['sessions_per_100_actions']} per "
              f"100 actions), {pg['commits_per_action']} commits per action, client sessions "
              f"{pg['client_sessions_before']} before -> {pg['client_sessions_after']} after")
    if floor:
        print(f"raw broker floor ({floor['messages']} events of {floor['event_bytes']} B at {floor['rate_per_s']}/s, "
              f"2 readers, librdkafka): broker {floor['broker_cpu_ms_per_event']} ms, client "
              f"{floor['client_cpu_ms_per_event']} ms CPU per event (net of the broker's idle)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--think-ms", type=float, default=1000.0, help="mean pause between a user's actions")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite", help="the sandbox's database")
    parser.add_argument("--settle-seconds", type=float, default=10.0, help="after start-up, before the idle figure")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="how long the idle figure is measured")
    parser.add_argument("--no-drain", action="store_true", help="stop counting CPU when the users stop")
    parser.add_argument("--no-floor", action="store_true", help="skip the raw broker floor")
    parser.add_argument("--api", help="an already running API (e.g. http://127.0.0.1:18000); default: start a "
                        "sandbox (only then are CPU figures measured)")
    args = parser.parse_args()
    if args.users < 1 or args.seconds <= 0 or args.think_ms < 0 or args.settle_seconds < 0 or args.idle_seconds <= 0:
        print("bench_api_load: --users must be >= 1, --seconds and --idle-seconds > 0, --think-ms and "
              "--settle-seconds >= 0", file=sys.stderr)
        return 2
    think_s = args.think_ms / 1000
    if args.api:
        figures = asyncio.run(run_load(args.api, args.users, args.seconds, think_s))
    else:
        try:
            figures = run_on_sandbox(args, think_s)
        except SandboxUnavailable as exc:
            print(f"bench_api_load: {exc}", file=sys.stderr)
            return 2
    summary = {"bench": "api_load", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "cpus": os.cpu_count(), "python": platform.python_version(), "users": args.users,
               "seconds": args.seconds, "think_ms": args.think_ms,
               "database": "external (--api)" if args.api else args.db,
               **figures,
               "target": {"errors": 0, "p99_ms": 200}}
    results = RESULTS_DIR / f"api_load_{'api' if args.api else args.db}_think{args.think_ms:g}ms.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(summary, indent=2))
    print(f"{args.users} users, think {args.think_ms:g} ms, {args.seconds:.0f}s: {figures['requests']} requests, "
          f"{figures['throughput_rps']} req/s, error rate {figures['error_rate']:.3%} {figures['errors'] or ''}")
    print(f"reads  p50 {figures['reads_ms']['p50']} ms  p99 {figures['reads_ms']['p99']} ms")
    print(f"writes p50 {figures['writes_ms']['p50']} ms  p99 {figures['writes_ms']['p99']} ms")
    for op, figs in figures["by_op"].items():
        print(f"  {op:<9} n={figs['n']:<6} p50 {figs['p50']} ms  p99 {figs['p99']} ms")
    if "cost" in figures:
        print_cost(summary)
    print(f"written to {results.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
