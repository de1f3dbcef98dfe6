"""The shared subscription plumbing: Dapr's answers, the event's correlation in every log line, metrics."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from services.platform import correlation
from services.platform.consumer import Delivery, DropEvent, RetryEvent, subscription_router
from services.platform.dapr_gateway import DaprUnavailable
from services.platform.logs import JsonFormatter
from tests.utils.events import delivered, snapshot, task_event

SERVICE = "consumer-test"
seen: list[tuple[str, str | None]] = []


async def handler(delivery: Delivery) -> None:
    title = delivery.data.task.title  # type: ignore[attr-defined]
    seen.append((title, correlation.current().correlation_id))
    logging.getLogger("consumer-test").info("handling")
    failures: dict[str, Exception] = {"drop": DropEvent("never"), "retry": RetryEvent("later"),
                                      "sidecar": DaprUnavailable("down"), "bug": KeyError("oops")}
    if title in failures:
        raise failures[title]


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(subscription_router(SERVICE, {"task-events": handler}))
    seen.clear()
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler_ = logging.StreamHandler(stream)
    handler_.setFormatter(JsonFormatter(SERVICE))
    root = logging.getLogger()
    root.addHandler(handler_)
    previous = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler_)
    root.setLevel(previous)


def send(client: TestClient, title: str) -> tuple[str, str]:
    event = task_event("updated", snapshot(title=title))
    answer = client.post("/events/task-events", content=delivered(event, "task-events"),
                         headers={"x-correlation-id": "the-http-request"})
    assert answer.status_code == 200
    return answer.json()["status"], str(event.correlationid)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": SERVICE, "topic": "task-events", **labels}) or 0.0


def test_success_runs_the_handler_in_the_events_correlation(client: TestClient, lines: io.StringIO) -> None:
    before = metric("events_consumed_total")
    status, event_correlation = send(client, "fine")
    assert status == "SUCCESS"
    assert seen == [("fine", event_correlation)]
    assert metric("events_consumed_total") == before + 1
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    ours = [entry for entry in logged if entry["msg"] in ("handling", "event handled")]
    assert [e["msg"] for e in ours] == ["handling", "event handled"]
    assert {e["correlation_id"] for e in ours} == {event_correlation} != {"the-http-request"}
    assert ours[1]["event_type"] == "todo.task.updated.v1"
    assert ours[1]["topic"] == "task-events"


@pytest.mark.parametrize(("title", "status", "stage"), [
    ("drop", "DROP", "drop"), ("retry", "RETRY", "retry"), ("sidecar", "RETRY", "retry"), ("bug", "RETRY", "error"),
])
def test_failures_map_to_dapr_answers(client: TestClient, title: str, status: str, stage: str) -> None:
    before = metric("events_failed_total", stage=stage)
    assert send(client, title)[0] == status
    assert metric("events_failed_total", stage=stage) == before + 1



def bulk_body(*titles: str) -> tuple[dict, list[str]]:
    """daprd's bulk envelope with one task event per title, and each event's correlation id."""
    events = [task_event("updated", snapshot(title=title)) for title in titles]
    entries = [{"entryId": f"entry-{n}", "event": json.loads(delivered(e, "task-events")),
                "contentType": "application/cloudevents+json", "metadata": {}} for n, e in enumerate(events)]
    envelope = {"id": "b1", "type": "com.dapr.event.sent.bulk", "pubsubname": "kafka-pubsub",
                "topic": "task-events", "metadata": {}, "entries": entries}
    return envelope, [str(e.correlationid) for e in events]


def test_a_bulk_delivery_runs_the_handler_per_entry_and_answers_each(
        client: TestClient, lines: io.StringIO) -> None:
    envelope, correlations = bulk_body("fine", "drop", "retry", "bug", "also fine")
    consumed = metric("events_consumed_total")
    answer = client.post("/events/task-events", json=envelope)
    assert answer.status_code == 200
    assert answer.json() == {"statuses": [
        {"entryId": "entry-0", "status": "SUCCESS"}, {"entryId": "entry-1", "status": "DROP"},
        {"entryId": "entry-2", "status": "RETRY"}, {"entryId": "entry-3", "status": "RETRY"},
        {"entryId": "entry-4", "status": "SUCCESS"}]}
    assert seen == list(zip(["fine", "drop", "retry", "bug", "also fine"], correlations, strict=True))
    assert metric("events_consumed_total") == consumed + 2
    handled = [json.loads(line) for line in lines.getvalue().splitlines()]
    handled = [e for e in handled if e["msg"] == "event handled"]
    assert [e["correlation_id"] for e in handled] == [correlations[0], correlations[4]]


def test_a_bulk_entry_without_an_id_is_ignored_and_one_off_contract_dropped(client: TestClient) -> None:
    envelope, _ = bulk_body("fine")
    envelope["entries"] += [{"event": envelope["entries"][0]["event"]},
                            {"entryId": "junk", "event": {"specversion": "1.0"}}]
    answer = client.post("/events/task-events", json=envelope).json()
    assert answer == {"statuses": [{"entryId": "entry-0", "status": "SUCCESS"}, {"entryId": "junk", "status": "DROP"}]}
    assert [title for title, _ in seen] == ["fine"]


def test_a_bulk_delivery_handles_tasks_concurrently_and_each_tasks_events_in_order() -> None:
    """Per-entry handling of a batch: a1 waits until b1 has started (with one entry at a time it
    would wait in vain and ask for a retry), a2 only starts once a1 is done, and after c1 asks for
    a retry c2 is not handled but retried with it, so it cannot overtake c1."""
    ids = {name: str(uuid.uuid4()) for name in "abc"}
    started: dict[str, asyncio.Event] = {}
    order: list[str] = []

    async def handler_(delivery: Delivery) -> None:
        title = delivery.data.task.title  # type: ignore[attr-defined]
        started.setdefault(title, asyncio.Event()).set()
        order.append(f"start {title}")
        if title == "a1":
            await asyncio.wait_for(started.setdefault("b1", asyncio.Event()).wait(), 30)
        await asyncio.sleep(0)
        order.append(f"end {title}")
        if title == "c1":
            raise RetryEvent("later")

    events = [task_event("updated", snapshot(task_id=ids[title[0]], title=title))
              for title in ("a1", "c1", "a2", "b1", "c2")]
    entries = [{"entryId": e.data["task"]["title"], "event": json.loads(delivered(e, "task-events"))}
               for e in events]
    app = FastAPI()
    app.include_router(subscription_router(SERVICE, {"task-events": handler_}))
    with TestClient(app) as test_client:
        answer = test_client.post("/events/task-events", json={
            "id": "b2", "type": "com.dapr.event.sent.bulk", "topic": "task-events", "entries": entries})
    assert answer.json() == {"statuses": [
        {"entryId": "a1", "status": "SUCCESS"}, {"entryId": "c1", "status": "RETRY"},
        {"entryId": "a2", "status": "SUCCESS"}, {"entryId": "b1", "status": "SUCCESS"},
        {"entryId": "c2", "status": "RETRY"}]}
    assert order.index("start b1") < order.index("end a1") < order.index("start a2")
    assert "start c2" not in order
