"""The Kafka outage drill (SC-007, SC-008): write through a broker outage and prove nothing was lost.

A steady write load goes through the task API for the whole drill: each task is created, updated, completed
and deleted, every write with its own correlation id. Before, during and after the outage the drill samples
the backend's unpublished outbox events. When the load stops it waits for the evidence that every write's
events arrived: the outbox empty again, one audit entry per write and topic (the correlation id is in each
entry), the worker's `event handled` line for each task-events event, and the WebSocket update of each write.

What "the outage" is on the sandbox: the broker process frozen for `outage_s` (procedures/freeze.py): the
in-memory broker keeps its log, so a loss found here is the platform's.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from console.model.logs import LogQuery, LogSource
from console.runbooks.procedures import Outcome, ProcedureError
from console.runbooks.procedures.freeze import WATCHDOG_MARGIN_S, BrokerFreeze
from console.runbooks.procedures.smoke import TASK_TOPICS
from console.runbooks.procedures.system import System
from console.runbooks.procedures.todo_api import Answer, ApiError, TodoClient
from console.runbooks.procedures.updates import UpdateListener
from console.sandbox import control
from console.sources.health import SourceError

LIFECYCLE = ("created", "updated", "completed", "deleted")
SAMPLE_EVERY_S = 0.5
Say = Callable[[str], None]


@dataclass(frozen=True)
class Write:
    at: float  # unix time the request was sent
    seconds: float
    action: str
    task_id: str | None
    correlation_id: str
    status: int
    error: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Timeline:
    started: float = 0.0
    frozen: float | None = None
    thawed: float | None = None
    stopped: float = 0.0

    def during_outage(self, t: float) -> bool:
        return self.frozen is not None and self.thawed is not None and self.frozen <= t < self.thawed

    @property
    def outage_s(self) -> float | None:
        return None if self.frozen is None or self.thawed is None else self.thawed - self.frozen


class _Loop(threading.Thread):
    """A background loop of the drill, with its own client, stopped (and waited for) by `stop()`."""

    def __init__(self, name: str, client: TodoClient) -> None:
        super().__init__(name=name, daemon=True)
        self.client = client
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=60)
        self.client.close()


class WriteLoad(_Loop):
    """Writes at `rate_per_s`, one after another, each task going created, updated, completed, deleted.

    A write that fails is recorded and the load goes on (a task whose creation failed is skipped): the drill
    counts failures, it does not stop on them.
    """

    def __init__(self, client: TodoClient, rate_per_s: float, label: str) -> None:
        super().__init__("drill-load", client)
        self.interval = 1.0 / rate_per_s
        self.label = label
        self.writes: list[Write] = []

    def run(self) -> None:
        next_at = time.monotonic()
        task_id: str | None = None
        step = 0
        while not self._halt.is_set():
            action = LIFECYCLE[step % len(LIFECYCLE)]
            if action != "created" and task_id is None:
                step += len(LIFECYCLE) - step % len(LIFECYCLE)  # its creation failed: start the next task
                continue
            correlation_id = f"drill-{action}-{uuid.uuid4().hex[:12]}"
            sent = time.time()
            if task_id is None:
                answer = self.client.create(f"{self.label} task {step // len(LIFECYCLE) + 1}",
                                            correlation_id=correlation_id)
            else:
                answer = self._change(action, task_id, correlation_id)
            if action == "created":
                task_id = str(answer.body["id"]) if answer.ok and isinstance(answer.body, dict) else None
            self.writes.append(Write(sent, answer.seconds, action, task_id, correlation_id, answer.status,
                                     answer.error))
            if action == "deleted":
                task_id = None
            step += 1
            next_at += self.interval
            self._halt.wait(max(0.0, next_at - time.monotonic()))

    def _change(self, action: str, task_id: str, correlation_id: str) -> Answer:
        if action == "updated":
            return self.client.update(task_id, {"priority": "high"}, correlation_id=correlation_id)
        if action == "completed":
            return self.client.complete(task_id, correlation_id=correlation_id)
        return self.client.delete(task_id, correlation_id=correlation_id)


class PendingSampler(_Loop):
    """The backend's `outbox_pending_events` every half second: (unix time, value or None)."""

    def __init__(self, client: TodoClient) -> None:
        super().__init__("drill-outbox", client)
        self.samples: list[tuple[float, float | None]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append((time.time(), self.client.outbox_pending()))
            except (ApiError, OSError) as exc:
                self.errors.append(str(exc))
            except Exception as exc:  # httpx's errors: the backend not answering is a figure, not a crash
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._halt.wait(SAMPLE_EVERY_S)


@dataclass
class DrillRun:
    """Everything the drill observed; the checks below read it."""

    system: System
    dry_run: bool
    timeline: Timeline
    writes: list[Write]
    pending: list[tuple[float, float | None]]
    frozen_observed: bool
    restarts_before: dict[str, int]
    listener: UpdateListener
    settle_timeout_s: float = 60.0  # how long after the load stops every event may take to arrive, in all
    audit: list[dict[str, Any]] = field(default_factory=list)
    audit_complete_at: float | None = None
    drained_at: float | None = None

    @property
    def ok_writes(self) -> list[Write]:
        return [w for w in self.writes if w.ok]

    def settle_deadline(self) -> float:
        """time.monotonic() by which every event must have arrived: one budget shared by every wait."""
        left = self.timeline.stopped + self.settle_timeout_s - time.time()
        return time.monotonic() + max(left, 0.0)


def sandbox_broker_pid(system: System) -> int:
    """The pid of the broker the sandbox runs; the drill refuses an external broker (not ours to freeze)."""
    if system.sandbox is None:
        raise ProcedureError("the outage drill runs on the sandbox only (target=sandbox)")
    broker = control.status(system.sandbox).get("broker") or {}
    if broker.get("mode") == "external":
        raise ProcedureError(f"the sandbox uses an external broker at {broker.get('bootstrap')} (KAFKA_BOOTSTRAP): "
                             "the drill freezes only a broker the sandbox runs itself")
    if not broker.get("alive") or not isinstance(broker.get("pid"), int):
        raise ProcedureError(f"the sandbox's broker is not running (state: {broker or 'none'})")
    return int(broker["pid"])


def restarts(system: System) -> dict[str, int]:
    if system.sandbox is None:
        return {}
    state = control.status(system.sandbox)
    counts = {name: int(p.get("restarts") or 0) for name, p in (state.get("processes") or {}).items()}
    counts["broker"] = int((state.get("broker") or {}).get("restarts") or 0)
    return counts


def run_drill(system: System, *, writes_per_s: float, before_s: float, outage_s: float, after_s: float,
              settle_timeout_s: float, dry_run: bool, say: Say = print) -> DrillRun:
    """Load before, during and after the outage (none in a dry run); returns what was observed."""
    pid = sandbox_broker_pid(system)
    freeze = BrokerFreeze(pid)
    listener = UpdateListener(system.endpoints.ws, system.token).start()
    load = WriteLoad(TodoClient(system), writes_per_s, system.user)
    sampler = PendingSampler(TodoClient(system))
    before = restarts(system)
    timeline = Timeline(started=time.time())
    frozen_observed = False
    sampler.start()
    load.start()
    say(f"{_clock(timeline.started)} writing {writes_per_s:g}/s as {system.user}")
    try:
        time.sleep(before_s)
        if dry_run:
            say(f"{_clock(time.time())} dry run: the broker keeps running for {outage_s:g}s")
            time.sleep(outage_s)
        else:
            freeze.freeze(outage_s + WATCHDOG_MARGIN_S)
            timeline.frozen = freeze.frozen_at
            say(f"{_clock(time.time())} broker (pid {pid}) frozen for {outage_s:g}s")
            deadline = time.monotonic() + outage_s
            while time.monotonic() < deadline:
                frozen_observed |= freeze.frozen
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            freeze.thaw()
            timeline.thawed = freeze.thawed_at
            say(f"{_clock(time.time())} broker thawed")
        time.sleep(after_s)
    finally:
        freeze.thaw()
        load.stop()
        timeline.stopped = time.time()
        sampler.stop()
    say(f"{_clock(timeline.stopped)} load stopped: {len(load.writes)} writes, "
        f"{sum(1 for w in load.writes if not w.ok)} failed")
    return DrillRun(system, dry_run, timeline, load.writes, sampler.samples, frozen_observed, before, listener,
                    settle_timeout_s)


# --- checks ----------------------------------------------------------------------------------------------


def broker_was_frozen(run: DrillRun) -> Outcome:
    name = "the broker stopped answering for the outage"
    if run.timeline.outage_s is None:
        return Outcome(name, False, "the broker was never frozen")
    if not run.frozen_observed:
        return Outcome(name, False, "the broker process was never seen stopped (state T) during the outage")
    return Outcome(name, True, f"frozen (SIGSTOP) for {run.timeline.outage_s:.1f}s", run.timeline.outage_s)


def api_kept_answering(run: DrillRun) -> Outcome:
    name = "the API kept answering every write"
    failed = [w for w in run.writes if not w.ok]
    during = sum(1 for w in run.writes if run.timeline.during_outage(w.at))
    if not run.writes:
        return Outcome(name, False, "no write was made")
    if failed:
        first = failed[0]
        return Outcome(name, False, f"{len(failed)} of {len(run.writes)} writes failed; first: {first.action} "
                                    f"at {_clock(first.at)}: {first.error}")
    return Outcome(name, True, f"{len(run.writes)} writes answered 2xx, {during} of them during the outage")


def outbox_held_events(run: DrillRun) -> Outcome:
    name = "events waited in the outbox during the outage"
    # The relay sets the gauge after each batch it tries; while a publish hangs on the frozen broker the gauge
    # keeps its last value, so the events that waited show from the freeze until the outbox drained.
    frozen = run.timeline.frozen or run.timeline.started
    during = [v for t, v in run.pending if t >= frozen]
    if not during or all(v is None for v in during):
        return Outcome(name, False, "the backend exported no outbox_pending_events sample after the freeze "
                                    "(is its outbox relay running?)")
    peak = max(v for v in during if v is not None)
    if peak <= 0:
        return Outcome(name, False, "the outbox stayed empty: the outage was not felt by the backend")
    return Outcome(name, True, f"up to {peak:.0f} events waited")


def wait_outbox_drained(run: DrillRun, client: TodoClient) -> Outcome:
    """Wait for the backend's outbox to be empty again; the time counts from the thaw (or the load's end)."""
    name = "the outbox drained after the outage"
    since = run.timeline.thawed or run.timeline.stopped
    deadline = run.settle_deadline()
    value = client.outbox_pending()
    while value is not None and value > 0 and time.monotonic() < deadline:
        time.sleep(SAMPLE_EVERY_S)
        value = client.outbox_pending()
        run.pending.append((time.time(), value))
    if value is None:
        return Outcome(name, False, "the backend exports no outbox_pending_events (is its outbox relay running?)")
    if value > 0:
        return Outcome(name, False, f"{value:.0f} events still unpublished {run.settle_timeout_s:g}s after the load stopped")
    run.drained_at = time.time()
    return Outcome(name, True, f"empty {run.drained_at - since:.1f}s after the broker came back",
                   run.drained_at - since)


def expected_entries(run: DrillRun) -> Counter[tuple[str, str]]:
    """(correlation id, topic) once for every topic of every successful write."""
    return Counter((w.correlation_id, topic) for w in run.ok_writes for topic in TASK_TOPICS)


def wait_audit_complete(run: DrillRun, client: TodoClient) -> Outcome:
    """Every write's events in the audit log exactly once; waits until none is missing or the deadline."""
    name = "every action reached the audit log exactly once"
    expected = expected_entries(run)
    deadline = run.settle_deadline()
    while True:
        run.audit = client.audit_entries(user_id=run.system.user)
        found = Counter((e.get("correlation_id"), e["topic"]) for e in run.audit)
        missing = [key for key in expected if found[key] == 0]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    duplicates = [key for key in expected if found[key] > 1]
    if missing or duplicates:
        first = (missing or duplicates)[0]
        return Outcome(name, False, f"{len(missing)} of {len(expected)} entries missing, {len(duplicates)} duplicated "
                                    f"{run.settle_timeout_s:g}s after the load stopped; first: {first[1]} event of "
                                    f"write {first[0]}")
    run.audit_complete_at = max(_unix(e["recorded_at"]) for e in run.audit) if run.audit else time.time()
    since = run.timeline.thawed or run.timeline.stopped
    catch_up = max(run.audit_complete_at - since, 0.0)
    return Outcome(name, True, f"{len(expected)} entries for {len(run.ok_writes)} writes, none missing or twice; "
                               f"complete {catch_up:.1f}s after the broker came back", catch_up)


def worker_saw_every_event(run: DrillRun, logs: LogSource) -> Outcome:
    """The worker logged `event handled` for every write's task-events event."""
    name = "the worker handled every task event"
    wanted = {w.correlation_id for w in run.ok_writes}
    query = LogQuery(service="worker", since=run.timeline.started - 5, limit=0)
    deadline = run.settle_deadline()
    while True:
        try:
            lines = logs.query(query)
        except SourceError as exc:
            return Outcome(name, False, str(exc))
        seen = {line.correlation_id for line in lines if line.source == "worker" and line.msg == "event handled"
                and line.fields.get("topic") == "task-events"}
        missing = wanted - seen
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if missing:
        return Outcome(name, False, f"{len(missing)} of {len(wanted)} events not handled {run.settle_timeout_s:g}s "
                                    f"after the load stopped; first: {sorted(missing)[0]}")
    return Outcome(name, True, f"{len(wanted)} events handled")


def websocket_pushed_every_update(run: DrillRun) -> Outcome:
    """The client connected for the whole drill received the update of every write."""
    name = "the WebSocket pushed every update"
    wanted = {(w.task_id, w.action) for w in run.ok_writes}
    deadline = run.settle_deadline()
    while True:
        got = Counter((u.task_id, u.action) for u in run.listener.received())
        missing = [key for key in wanted if got[key] == 0]
        if not missing or time.monotonic() >= deadline or run.listener.closed_reason:
            break
        time.sleep(0.5)
    if missing:
        why = f" (the connection {run.listener.closed_reason})" if run.listener.closed_reason else ""
        return Outcome(name, False, f"{len(missing)} of {len(wanted)} updates never arrived{why}; "
                                    f"first: {missing[0][1]} of task {missing[0][0]}")
    twice = sum(1 for key in wanted if got[key] > 1)
    return Outcome(name, True, f"{len(wanted)} updates" + (f", {twice} of them twice" if twice else ""))


def services_recovered(run: DrillRun) -> Outcome:
    """Every process of the sandbox is running and ready again, without anyone touching it."""
    name = "every service recovered on its own"
    if run.system.sandbox is None:
        raise ProcedureError("the outage drill runs on the sandbox only (target=sandbox)")
    state = control.status(run.system.sandbox)
    unwell = [n for n, p in (state.get("processes") or {}).items() if not p.get("ready")]
    broker_alive = bool((state.get("broker") or {}).get("alive"))
    after = restarts(run.system)
    restarted = {n: after[n] - run.restarts_before.get(n, 0) for n in after if after[n] > run.restarts_before.get(n, 0)}
    note = ("; restarted by the supervisor: " + ", ".join(f"{n} x{c}" for n, c in restarted.items())) if restarted else ""
    if unwell or not broker_alive:
        return Outcome(name, False, f"not ready: {', '.join(unwell + ([] if broker_alive else ['broker']))}{note}")
    return Outcome(name, True, f"{len(state.get('processes') or {})} processes and the broker ready{note}")


# --- figures ---------------------------------------------------------------------------------------------


def latency_ms(writes: list[Write]) -> dict[str, float | None]:
    """p50, p99 and max of the writes' latency in milliseconds (None without writes)."""
    values = sorted(w.seconds * 1000 for w in writes)
    if not values:
        return {"p50": None, "p99": None, "max": None}
    p99 = values[min(len(values) - 1, max(0, round(0.99 * len(values)) - 1))]
    return {"p50": statistics.median(values), "p99": p99, "max": values[-1]}


def figures(run: DrillRun) -> dict[str, tuple[float | int | None, str]]:
    """The drill's figures, name -> (value, unit); the recovery times are the recovery checks' own figures."""
    elapsed = max(run.timeline.stopped - run.timeline.started, 1e-9)
    during = [w for w in run.writes if run.timeline.during_outage(w.at)]
    overall, outage = latency_ms(run.writes), latency_ms(during)
    peak = max((v for _, v in run.pending if v is not None), default=None)
    return {
        "writes": (len(run.writes), ""),
        "writes during the outage": (len(during), ""),
        "write rate": (len(run.writes) / elapsed, "/s"),
        "outage": (run.timeline.outage_s, "s"),
        "API latency p50": (overall["p50"], "ms"),
        "API latency p99": (overall["p99"], "ms"),
        "API latency p99 during the outage": (outage["p99"], "ms"),
        "outbox peak": (peak, "events"),
        "audit entries": (len(run.audit), ""),
    }


def in_flight(run: DrillRun) -> tuple[list[float], list[int]]:
    """Events written but not yet in the audit log, over time: +1 per topic when a write is answered, -1 when
    its audit entry is recorded. Unlike the backend's gauge (set after each batch the relay tries) it moves
    while the broker is frozen."""
    steps = [(w.at + w.seconds, len(TASK_TOPICS)) for w in run.ok_writes]
    steps += [(_unix(e["recorded_at"]), -1) for e in run.audit]
    times, values, level = [], [], 0
    for at, change in sorted(steps):
        level += change
        times.append(at)
        values.append(level)
    return times, values


def plot(run: DrillRun) -> Any:
    """Write latency, the outbox and the audit log over the drill, the outage shaded: the shape of recovery."""
    from matplotlib.figure import Figure

    t0 = run.timeline.started
    fig = Figure(figsize=(10, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    ok = [w for w in run.writes if w.ok]
    bad = [w for w in run.writes if not w.ok]
    top.scatter([w.at - t0 for w in ok], [w.seconds * 1000 for w in ok], s=8, label="write answered")
    if bad:
        top.scatter([w.at - t0 for w in bad], [w.seconds * 1000 for w in bad], s=20, marker="x", color="red",
                    label="write failed")
    top.set_ylabel("API latency (ms)")
    times, waiting = in_flight(run)
    if times:
        bottom.step([t - t0 for t in times], waiting, where="post", label="written, not yet in the audit log")
    pending = [(t - t0, v) for t, v in run.pending if v is not None]
    if pending:
        bottom.step([p[0] for p in pending], [p[1] for p in pending], where="post", linestyle="--",
                    label="outbox pending (backend gauge)")
    bottom.set_xlabel("seconds since the load started")
    bottom.set_ylabel("events")
    bottom.legend(loc="upper left")
    frozen, thawed = run.timeline.frozen, run.timeline.thawed
    for axis in (top, bottom):
        if frozen is not None and thawed is not None:
            axis.axvspan(frozen - t0, thawed - t0, color="orange", alpha=0.25,
                         label="broker frozen" if axis is top else None)
        axis.grid(alpha=0.3)
    top.legend(loc="upper right")
    fig.suptitle(f"Kafka outage drill: {len(run.writes)} writes, outage {run.timeline.outage_s or 0:.0f}s")
    return fig


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))
