"""The smoke test: one task created and deleted, and each of its events seen where it should arrive.

Each stage waits, with a deadline, for one piece of evidence a person could also look up by hand: the worker's
`event handled` log line for the write's correlation id (the sandbox's log files, or Loki), the WebSocket
update a browser would get, and one audit entry per topic. The time from the write to each piece is the
stage's figure.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from console.model.logs import LogQuery, LogSource
from console.runbooks.procedures import Outcome
from console.runbooks.procedures.todo_api import TodoClient
from console.runbooks.procedures.updates import UpdateListener
from console.sources.health import SourceError

POLL_S = 0.2
TASK_TOPICS = ("task-events", "task-updates")  # every task action is published to both (README, Events)
T = TypeVar("T")


@dataclass(frozen=True)
class Written:
    """A write the smoke test made: which task, which action, under which correlation id, when."""

    task_id: str
    action: str  # created | deleted
    correlation_id: str
    at: float  # unix time the API answered


def new_correlation_id(action: str) -> str:
    return f"smoke-{action}-{uuid.uuid4().hex[:12]}"


def apis_answer(client: TodoClient) -> list[Outcome]:
    """The task API and the audit API answer an authenticated read (what a dry run checks)."""
    outcomes = []
    for name, url in (("the task API answers", f"{client.system.endpoints.api}/tasks"),
                      ("the audit API answers", client.system.endpoints.audit)):
        answer = client.call("GET", url, params={"limit": 1})
        outcomes.append(Outcome(name, answer.ok, f"GET {url}: {answer.status}" if answer.ok else
                                f"GET {url}: {answer.error}", answer.seconds))
    return outcomes


def create_task(client: TodoClient, title: str) -> Written:
    correlation_id = new_correlation_id("created")
    task = client.create_task(title, correlation_id=correlation_id)
    return Written(str(task["id"]), "created", correlation_id, time.time())


def delete_task(client: TodoClient, created: Written) -> Written:
    correlation_id = new_correlation_id("deleted")
    client.delete_task(created.task_id, correlation_id=correlation_id)
    return Written(created.task_id, "deleted", correlation_id, time.time())


def _poll(look: Callable[[], T | None], timeout_s: float) -> T | None:
    deadline = time.monotonic() + timeout_s
    while True:
        found = look()
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(POLL_S)


def worker_handled(logs: LogSource, written: Written, timeout_s: float) -> Outcome:
    """The worker logged `event handled` for this write's task-events event."""
    name = f"the worker handled the {written.action} event"
    query = LogQuery(service="worker", correlation_id=written.correlation_id, since=written.at - 60, limit=50)

    def look() -> float | None:
        lines = [line for line in logs.query(query)
                 if line.source == "worker" and line.msg == "event handled"
                 and line.fields.get("topic") == "task-events"]
        return lines[0].ts if lines else None

    try:
        handled_at = _poll(look, timeout_s)
    except SourceError as exc:
        return Outcome(name, False, str(exc))
    if handled_at is None:
        return Outcome(name, False, f"no `event handled` line with correlation id {written.correlation_id} "
                                        f"in the worker's logs ({logs.address}) after {timeout_s:g}s")
    return Outcome(name, True, f"logged at {_clock(handled_at)}", max(handled_at - written.at, 0.0))


def websocket_pushed(listener: UpdateListener, written: Written, timeout_s: float) -> Outcome:
    """The connected client received the update of this write."""
    name = f"the WebSocket pushed the {written.action} update"
    update = listener.wait_for(lambda u: u.task_id == written.task_id and u.action == written.action, timeout_s)
    if update is None:
        why = f" (the connection {listener.closed_reason})" if listener.closed_reason else ""
        return Outcome(name, False, f"no {written.action} update for task {written.task_id} after {timeout_s:g}s{why}")
    return Outcome(name, True, f"{update.event_type}", max(update.at - written.at, 0.0))


def audit_recorded(client: TodoClient, written: Written, timeout_s: float) -> Outcome:
    """One audit entry of this write per task topic, no more, no fewer."""
    name = f"the audit log recorded the {written.action} action"

    def look() -> list[dict[str, object]] | None:
        entries = client.audit_entries(correlation_id=written.correlation_id)
        return entries if {e["topic"] for e in entries} >= set(TASK_TOPICS) else None

    entries = _poll(look, timeout_s) or client.audit_entries(correlation_id=written.correlation_id)
    per_topic = {t: sum(1 for e in entries if e["topic"] == t) for t in TASK_TOPICS}
    if any(count != 1 for count in per_topic.values()):
        counts = ", ".join(f"{t} {n}" for t, n in per_topic.items())
        return Outcome(name, False, f"expected one entry per topic, found {counts} after {timeout_s:g}s")
    wrong = [e for e in entries if e["action"] != written.action or e["entity_id"] != written.task_id]
    if wrong:
        return Outcome(name, False, f"entries with the write's correlation id record {wrong[0]['action']} "
                                        f"of {wrong[0]['entity_id']}")
    recorded = max(datetime.fromisoformat(str(e["recorded_at"])).timestamp() for e in entries)
    return Outcome(name, True, ", ".join(f"{t}: 1 entry" for t in TASK_TOPICS), max(recorded - written.at, 0.0))


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"
