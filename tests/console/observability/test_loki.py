"""The Loki source through its own HTTP client against the stand-in that speaks Loki's wire contract.

The lines pushed are what Fluent Bit ships from the cluster (kustomize/operators/fluent-bit/values.yaml):
the container's JSON line merged with a `kubernetes` map, under the stream labels job, namespace, pod,
container and app.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from console.model.logs import LogQuery
from console.sandbox.ports import free_port
from console.sources.health import SourceError
from console.sources.loki import LokiSource

from .loki_standin import LokiStandIn, parse_logql, running_loki

NS = 1_000_000_000
T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z
CID = "req-7f3a"
EVENT_ID = "0f8c2a4e-9d1b-4b7e-8e51-2c6f9a0d3b77"


def pod_labels(app: str, container: str) -> dict[str, str]:
    return {"job": "fluent-bit", "namespace": "todo-app", "pod": f"{app}-7d9f8b6c5-x2x4q", "container": container,
            "app": app}


def shipped(app: str, container: str, fields: dict[str, Any]) -> str:
    """A line as Fluent Bit's loki output writes it: Merge_Log'd JSON plus the kubernetes map."""
    return json.dumps({**fields, "kubernetes": {"pod_name": f"{app}-7d9f8b6c5-x2x4q", "namespace_name": "todo-app",
                                                "container_name": container,
                                                "labels": {"app.kubernetes.io/name": app}}})


def push(loki: LokiStandIn, app: str, container: str, at: float, fields: dict[str, Any]) -> None:
    loki.push(pod_labels(app, container), int(at * NS), shipped(app, container, fields))


@pytest.fixture
def loki() -> Iterator[tuple[LokiSource, LokiStandIn]]:
    with running_loki() as (url, standin):
        # a request's path through the platform, and a dead-lettered event
        push(standin, "backend", "app", T0 + 1, {"ts": "x", "level": "info", "service": "backend", "msg": "request",
                                                 "method": "POST", "path": "/api/tasks", "status": 201,
                                                 "correlation_id": CID})
        push(standin, "backend", "app", T0 + 2, {"level": "info", "service": "backend", "msg": "request",
                                                 "status": 200, "correlation_id": "other"})
        push(standin, "worker", "app", T0 + 3, {"level": "warning", "service": "worker", "msg": "event dropped",
                                                "event_id": EVENT_ID, "correlation_id": CID,
                                                "error": "recurring task 42 has no due date"})
        push(standin, "worker", "daprd", T0 + 4, {"level": "warning", "app_id": "worker", "scope": "dapr.runtime",
                                                  "msg": f"DROP status returned from app while processing pub/sub "
                                                         f"event {EVENT_ID}"})
        push(standin, "audit", "app", T0 + 5, {"level": "info", "service": "audit", "msg": "event handled",
                                               "event_id": EVENT_ID, "correlation_id": CID})
        source = LokiSource(url, poll_s=0.05)
        yield source, standin
        source.close()


def window(**kwargs: Any) -> LogQuery:
    return LogQuery(since=T0, until=T0 + 60, **kwargs)


def test_a_services_lines_come_with_its_sidecars(loki: tuple[LokiSource, LokiStandIn]) -> None:
    source, standin = loki
    lines = source.query(window(service="worker"))
    assert [(line.source, line.msg[:13]) for line in lines] == [("worker", "event dropped"),
                                                                 ("worker-dapr", "DROP status r")]
    assert standin.requests[-1]["query"] == '{namespace="todo-app", app="worker"}'
    assert standin.requests[-1]["direction"] == "backward"
    assert standin.requests[-1]["start"] == str(int(T0 * NS))
    assert lines[0].labels["pod"] == "worker-7d9f8b6c5-x2x4q"
    assert "kubernetes" not in lines[0].fields
    assert lines[0].ts == T0 + 3


def test_the_sidecar_alone(loki: tuple[LokiSource, LokiStandIn]) -> None:
    source, standin = loki
    lines = source.query(window(service="worker-dapr"))
    assert [line.source for line in lines] == ["worker-dapr"]
    assert standin.requests[-1]["query"] == '{namespace="todo-app", app="worker", container="daprd"}'


def test_a_correlation_id_finds_the_request_and_every_consumer(loki: tuple[LokiSource, LokiStandIn]) -> None:
    source, standin = loki
    lines = source.query(window(correlation_id=CID))
    assert [line.source for line in lines] == ["backend", "worker", "audit"]
    assert all(line.correlation_id == CID for line in lines)
    assert standin.requests[-1]["query"] == f'{{namespace="todo-app"}} |= "{CID}"'


def test_an_event_id_finds_the_apps_and_the_sidecars_lines(loki: tuple[LokiSource, LokiStandIn]) -> None:
    source, _ = loki
    lines = source.query(window(event_id=EVENT_ID))
    assert [line.source for line in lines] == ["worker", "worker-dapr", "audit"]
    both = source.query(window(event_id=EVENT_ID, correlation_id=CID, service="audit"))
    assert [line.msg for line in both] == ["event handled"]


def test_time_range_and_limit_keep_the_newest(loki: tuple[LokiSource, LokiStandIn]) -> None:
    source, _ = loki
    assert [line.ts for line in source.query(window(limit=2))] == [T0 + 4, T0 + 5]
    assert [line.ts for line in source.query(LogQuery(since=T0 + 2, until=T0 + 4))] == [T0 + 2, T0 + 3]  # end excluded


def test_reason_for_a_dead_lettered_event_comes_from_the_app(loki: tuple[LokiSource, LokiStandIn],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    source, _ = loki
    monkeypatch.setattr(time, "time", lambda: T0 + 3600)  # the lines are an hour old: within the lookback
    assert source.reason_for(EVENT_ID) == "worker: event dropped: recurring task 42 has no due date"
    assert source.reason_for("no-such-event") is None


def test_follow_yields_new_lines_once(loki: tuple[LokiSource, LokiStandIn]) -> None:
    source, standin = loki
    follow = source.follow(LogQuery(service="worker"))
    soon = time.time() + 0.3

    def later() -> None:
        push(standin, "worker", "app", soon, {"level": "info", "service": "worker", "msg": "event handled"})
        push(standin, "backend", "app", soon, {"level": "info", "service": "backend", "msg": "request"})

    threading.Timer(0.2, later).start()
    line = next(follow)
    assert (line.source, line.msg, line.ts) == ("worker", "event handled", pytest.approx(soon))
    assert standin.requests[-1]["direction"] == "forward"
    push(standin, "worker", "app", time.time() + 0.3, {"level": "error", "service": "worker", "msg": "second"})
    assert next(follow).msg == "second"  # the first line, re-read in the overlap, is not yielded again
    follow.close()


def test_a_query_loki_refuses_is_one_line_naming_it(loki: tuple[LokiSource, LokiStandIn]) -> None:
    source, _ = loki
    with pytest.raises(SourceError, match=r"^loki at http://127\.0\.0\.1:\d+: HTTP 400: end timestamp must not be"):
        source.query(LogQuery(since=T0 + 10, until=T0))


def test_loki_down_is_one_line_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceError, match=rf"^loki at {url}: connection refused$"):
        LokiSource(url, timeout_s=2).query(LogQuery(service="worker"))


def test_something_else_than_loki_is_named(loki: tuple[LokiSource, LokiStandIn]) -> None:
    source, _ = loki
    with pytest.raises(SourceError, match="HTTP 404: not found"):
        source._get("/loki/api/v1/nope", {})


# --- the stand-in keeps Loki's contract (so it cannot pass a source Loki would refuse) ----------------


def test_the_standin_answers_loki_shapes_and_refuses_the_rest(loki: tuple[LokiSource, LokiStandIn]) -> None:
    source, _ = loki
    ok = httpx.get(f"{source.url}/loki/api/v1/query_range", params={
        "query": '{app="audit"}', "start": str(int(T0 * NS)), "end": "2024-05-01T13:00:00Z"}).json()
    assert ok["status"] == "success"
    assert ok["data"]["resultType"] == "streams"
    assert ok["data"]["result"][0]["values"][0][0] == str(int((T0 + 5) * NS))
    assert ok["data"]["stats"]["summary"]["totalEntriesReturned"] == 1
    for query, message in [('{app=~".*"}', "at least one regexp or equality matcher"),
                           ('{app="audit"} | json', "syntax error"),
                           ('sum(count_over_time({app="audit"}[5m]))', "syntax error")]:
        bad = httpx.get(f"{source.url}/loki/api/v1/query_range", params={"query": query})
        assert bad.status_code == 400
        assert bad.json()["status"] == "error"
        assert message in bad.json()["message"]
    assert parse_logql('{a="x", b!~`y.*`} != "z" |~ "w+"').filters[1].op == "|~"
