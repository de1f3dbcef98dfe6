"""Paced writes through the task API, and what became of each one: shared by the delivery benchmark and the
sandbox's delivery tests (the action mix also by the audit completeness benchmark).

Each action carries its own `X-Correlation-ID`. The backend stamps it on every outbox row the action
commits and the audit service on every row it records, so "every action answered 2xx reaches the audit
log exactly once" is checked per action: the events the outbox holds for its id, each present once in
the audit log. Times come from the two SQLite databases of the sandbox (the outbox row's `created_at`,
the commit; the audit row's `recorded_at`), on the same clock.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from services.platform.auth import mint_dev_token

USERS = 20
# The API load benchmark's writes (bench_api_load: 100 users, 1 s think time, 40 % writes): ~40/s.
API_LOAD_WRITES_PER_S = 40.0


@dataclass
class Driven:
    """What the API answered: correlation id -> (action, status), and when the load ran."""

    answers: dict[str, tuple[str, int]] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def accepted(self) -> list[str]:
        return [cid for cid, (_, status) in self.answers.items() if 200 <= status < 300]

    def counts(self) -> dict[str, int]:
        return dict(Counter(f"{action} {status}" for action, status in self.answers.values()))


async def mixed_action(client: httpx.AsyncClient, headers: dict[str, str], mine: list[tuple[str, int]],
                       rng: random.Random, n: int) -> tuple[str, httpx.Response]:
    """One action of the mix: create 40 %, update 30 %, complete 15 %, delete 15 % of a task the user
    owns (`mine`: (id, version), kept up to date); a create when the user owns none."""
    roll = rng.random()
    if not mine or roll < 0.4:
        answer = await client.post("/api/tasks", headers=headers,
                                   json={"title": f"delivery {n}", "due_at": "2027-03-01T09:00:00Z"})
        if answer.status_code == 201:
            mine.append((answer.json()["id"], 1))
        return "create", answer
    task_id, version = mine.pop(rng.randrange(len(mine)))
    if roll < 0.7:
        answer = await client.patch(f"/api/tasks/{task_id}", json={"title": f"edited {n}"},
                                    headers={**headers, "If-Match": f'"{version}"'})
        if answer.status_code == 200:
            mine.append((task_id, answer.json()["version"]))
        return "update", answer
    if roll < 0.85:
        return "complete", await client.post(f"/api/tasks/{task_id}/complete", headers=headers)
    return "delete", await client.delete(f"/api/tasks/{task_id}", headers=headers)


async def drive(api: str, secret: str, *, rate: float, seconds: float, seed: int = 1,
                transport_errors_ok: bool = False) -> Driven:
    """`rate` writes per second for `seconds` (create 40 %, update 30 %, complete 15 %, delete 15 %),
    spread over USERS users, each started on schedule whatever the earlier ones are doing."""
    tokens = [mint_dev_token(secret, f"delivery-{u}") for u in range(USERS)]
    owned: list[list[tuple[str, int]]] = [[] for _ in range(USERS)]
    rng = random.Random(seed)
    driven = Driven(started=time.time())

    async def one(client: httpx.AsyncClient, n: int) -> None:
        user = n % USERS
        cid = uuid.uuid4().hex
        headers = {"Authorization": f"Bearer {tokens[user]}", "X-Correlation-ID": cid}
        started = time.perf_counter()
        try:
            action, answer = await mixed_action(client, headers, owned[user], rng, n)
        except httpx.TransportError:
            if not transport_errors_ok:
                raise
            driven.answers[cid] = ("transport-error", 0)
            return
        driven.latencies_ms.append((time.perf_counter() - started) * 1000)
        driven.answers[cid] = (action, answer.status_code)

    limits = httpx.Limits(max_connections=USERS, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=api, timeout=60, limits=limits) as client:
        begin = time.monotonic()
        pending = []
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))
            pending.append(asyncio.create_task(one(client, n)))
        await asyncio.gather(*pending)
    driven.ended = time.time()
    return driven


def parse_time(value: str) -> float:
    """A SQLAlchemy DateTime as SQLite stores it (naive UTC, or with an offset) -> Unix seconds."""
    stamp = datetime.fromisoformat(value)
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


@dataclass
class Delivery:
    """The events of the accepted actions, and which of them the audit log holds."""

    expected: dict[str, float]  # event key (topic/event id) -> committed at
    recorded: dict[str, float]  # event key -> first recorded at
    duplicates: int
    missing_actions: list[str]  # accepted correlation ids with an event missing (or none at all)

    @property
    def complete(self) -> bool:
        return not self.missing_actions and not self.duplicates

    def latencies_s(self) -> list[float]:
        return sorted(self.recorded[k] - self.expected[k] for k in self.expected if k in self.recorded)


def delivery(root: Path, accepted: list[str]) -> Delivery:
    """Outbox events of `accepted` correlation ids (in `<root>/backend.db`) against the audit log
    (`<root>/audit.db`)."""
    wanted = set(accepted)
    per_action: dict[str, set[str]] = {cid: set() for cid in wanted}
    expected: dict[str, float] = {}
    with sqlite3.connect(root / "backend.db") as db:
        for cid, topic, event_id, created in db.execute(
                "SELECT correlation_id, topic, event_id, created_at FROM outbox_events"):
            if cid in wanted:
                key = f"{topic}/{event_id}"
                per_action[cid].add(key)
                expected[key] = parse_time(created)
    recorded: dict[str, float] = {}
    seen: Counter[str] = Counter()
    with sqlite3.connect(root / "audit.db") as db:
        for topic, event_id, at in db.execute("SELECT topic, event_id, recorded_at FROM audit_log"):
            key = f"{topic}/{event_id}"
            seen[key] += 1
            recorded.setdefault(key, parse_time(at))
    missing = [cid for cid, keys in per_action.items() if not keys or not keys <= recorded.keys()]
    return Delivery(expected, {k: v for k, v in recorded.items() if k in expected},
                    sum(n - 1 for k, n in seen.items() if k in expected), missing)


def wait_for_delivery(root: Path, accepted: list[str], timeout_s: float) -> Delivery:
    """Poll until every accepted action's events are in the audit log, or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = delivery(root, accepted)
        if not found.missing_actions or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")
