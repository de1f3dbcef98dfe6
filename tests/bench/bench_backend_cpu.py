"""The backend alone: CPU milliseconds per request of each task API operation, on SQLite or PostgreSQL.

Run by hand: ``python tests/bench/bench_backend_cpu.py [--db postgres] [--requests 600] [--profile DIR]``.
bench_api_load.py measures the whole sandbox; this isolates the backend's own request path, for A/B
comparisons of a change to it: one uvicorn process started as the sandbox starts it (uvloop,
httptools, JSON logs at info), its outbox relay off (no sidecar: the relay's cost is in
bench_api_load's figure), driven by `--users` concurrent clients in this process, each operation in a
phase of its own (create, list, get, update with If-Match, complete), then the load benchmark's mix.
The CPU is the backend process's own counters (process_cost.py) over each phase, so the figures hold
on a machine other work is using; the phases run twice and the lower figure of each is kept (the
first round also warms the process up).

`--profile DIR` also samples the backend with py-spy over the mix phase and writes collapsed stacks
(`mix.txt`, flamegraph.pl's input) and the top functions by inclusive time (printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from console.sandbox.ports import free_port
from tests.bench import process_cost
from tests.bench.bench_api_load import MIX
from tests.utils.postgres import PostgresUnavailable, running_postgres

RESULTS_DIR = REPO / "tests" / "bench" / "results"
JWT_SECRET = "bench-backend-cpu-secret-of-at-least-32-bytes"
START_TIMEOUT_S = 60.0

Op = Callable[[aiohttp.ClientSession, "User"], Awaitable[None]]


class User:
    """One simulated user: a token and the tasks it has (id -> version last seen)."""

    def __init__(self, api: str, token: str, seed: int) -> None:
        self.api = api
        self.headers = {"Authorization": f"Bearer {token}"}
        self.tasks: dict[str, int] = {}
        self.pending: list[str] = []
        self.rng = random.Random(seed)

    async def call(self, client: aiohttp.ClientSession, method: str, path: str, expected: set[int],
                   **kwargs: Any) -> dict[str, Any] | None:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        async with client.request(method, f"{self.api}{path}", headers=headers, **kwargs) as response:
            body = await response.read()
            if response.status not in expected:
                raise RuntimeError(f"{method} {path}: {response.status} {body[:200]!r}")
            return json.loads(body) if body and response.status in (200, 201) else None

    def seen(self, task: dict[str, Any] | None) -> None:
        if task and "id" in task:
            self.tasks[task["id"]] = task["version"]


async def op_create(client: aiohttp.ClientSession, user: User) -> None:
    due = f"2026-12-{user.rng.randint(1, 28):02d}T09:00:00+00:00"
    task = await user.call(client, "POST", "/api/tasks", {201}, json={"title": "load", "due_at": due, "tags": ["load"]})
    user.seen(task)
    if task:
        user.pending.append(task["id"])


async def op_list(client: aiohttp.ClientSession, user: User) -> None:
    await user.call(client, "GET", "/api/tasks", {200}, params={"status": "pending", "limit": "20"})


async def op_get(client: aiohttp.ClientSession, user: User) -> None:
    await user.call(client, "GET", f"/api/tasks/{user.rng.choice(list(user.tasks))}", {200})


async def op_update(client: aiohttp.ClientSession, user: User) -> None:
    task_id = user.rng.choice(list(user.tasks))
    user.seen(await user.call(client, "PATCH", f"/api/tasks/{task_id}", {200, 412},
                              json={"priority": user.rng.choice(["low", "high"])},
                              headers={"If-Match": f'"{user.tasks[task_id]}"'}))


async def op_complete(client: aiohttp.ClientSession, user: User) -> None:
    if not user.pending:
        await op_create(client, user)
    user.seen(await user.call(client, "POST", f"/api/tasks/{user.pending.pop()}/complete", {200, 409}))


OPS: dict[str, Op] = {"create": op_create, "list": op_list, "get": op_get, "update": op_update,
                      "complete": op_complete}


async def op_mix(client: aiohttp.ClientSession, user: User) -> None:
    names = [name for name, weight in MIX for _ in range(weight)]
    await OPS[user.rng.choice(names)](client, user)


async def phase(client: aiohttp.ClientSession, users: list[User], op: Op, requests: int) -> None:
    """`requests` calls of `op`, shared by the users, each user one at a time."""
    share = [requests // len(users) + (n < requests % len(users)) for n in range(len(users))]

    async def run(user: User, count: int) -> None:
        for _ in range(count):
            await op(client, user)

    await asyncio.gather(*(run(user, count) for user, count in zip(users, share, strict=True)))


def cpu_s(pid: int) -> float:
    return process_cost.sample({"backend": pid}).cpu_s["backend"]


@contextmanager
def py_spy(pid: int, out: Path) -> Iterator[None]:
    """py-spy sampling `pid` (threads, native frames off) into collapsed stacks at `out`, for the block."""
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "250",
                            "--format", "raw", "--output", str(out), "--gil", "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # attached before the phase starts
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def top_functions(collapsed: Path, limit: int = 40) -> list[tuple[str, float]]:
    """(function (file), % of the samples it is on the stack of), largest first, from py-spy's raw
    output (`frame;frame;... count` per line, each frame `function (file:line)`)."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        for frame in dict.fromkeys(re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")):
            inclusive[frame] += n
    return [(frame, round(100 * n / max(total, 1), 1)) for frame, n in inclusive.most_common(limit)]


@contextmanager
def backend(database_url: str, workdir: Path) -> Iterator[tuple[str, int]]:
    """The backend as the sandbox starts it (catalog.service_process), without a sidecar: (url, pid)."""
    port = free_port()
    env = {**os.environ, "SERVICE_NAME": "backend", "PORT": str(port), "APP_ENV": "development",
           "LOG_LEVEL": "info", "SECRET_SOURCE": "env", "AUTH_DEV_MODE": "true", "JWT_SECRET": JWT_SECRET,
           "DATABASE_URL": database_url, "RELAY_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
    with open(workdir / "backend.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "services.backend.main:app", "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "info"],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def wait_healthy(api: str, client: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            async with client.get(f"{api}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the backend did not start (see backend.log)")
        await asyncio.sleep(0.2)


async def measure(api: str, pid: int, args: argparse.Namespace, profile_dir: Path | None) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=args.users)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as client:
        await wait_healthy(api, client)
        users = []
        for n in range(args.users):
            async with client.post(f"{api}/api/dev/token", params={"user": f"cpu-user-{n}"}) as minted:
                users.append(User(api, (await minted.json())["access_token"], n))
        await phase(client, users, op_create, args.users * 5)  # every user has tasks to read and change
        figures: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, op in [*OPS.items(), ("mix", op_mix)]:
                before = cpu_s(pid)
                await phase(client, users, op, args.requests)
                spent_ms = (cpu_s(pid) - before) * 1000 / args.requests
                figures[name] = round(min(figures.get(name, spent_ms), spent_ms), 3)
        profile = None
        if profile_dir is not None:
            with py_spy(pid, profile_dir / "mix.txt"):
                await phase(client, users, op_mix, args.requests * 3)
            profile = top_functions(profile_dir / "mix.txt")
    return {"cpu_ms_per_request": figures, "profile_top": profile}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--users", type=int, default=20, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=600, help="requests per phase")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of phases; each figure is the lowest")
    parser.add_argument("--profile", type=Path, help="sample the mix with py-spy, collapsed stacks into this dir")
    args = parser.parse_args()
    if args.users < 1 or args.requests < args.users or args.rounds < 1:
        print("bench_backend_cpu: --users and --rounds must be >= 1, --requests >= --users", file=sys.stderr)
        return 2
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="backend-cpu-")))
        if args.db == "postgres":
            try:
                url = stack.enter_context(running_postgres()).url()
            except PostgresUnavailable as exc:
                print(f"bench_backend_cpu: {exc}", file=sys.stderr)
                return 2
        else:
            url = f"sqlite:///{workdir / 'todo.db'}"
        api, pid = stack.enter_context(backend(url, workdir))
        figures = asyncio.run(measure(api, pid, args, args.profile))
    summary = {"bench": "backend_cpu", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "database": args.db, "users": args.users, "requests_per_phase": args.requests,
               "load_average": process_cost.load_average(), **figures}
    results = RESULTS_DIR / f"backend_cpu_{args.db}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(summary, indent=2))
    print(f"backend CPU ms per request ({args.db}, {args.users} users, {args.requests} requests per phase, "
          f"lowest of {args.rounds}, load average {summary['load_average']}):")
    for name, value in figures["cpu_ms_per_request"].items():
        print(f"  {name:<9} {value:7.3f}")
    if figures["profile_top"]:
        print("py-spy --gil, mix phase: % of the samples each function is on the stack of")
        for frame, share in figures["profile_top"]:
            print(f"  {share:5.1f}  {frame}")
    print(f"written to {results.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
