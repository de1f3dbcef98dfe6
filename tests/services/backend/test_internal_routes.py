"""The worker's route for the next instance of a series: guarded, idempotent by occurrence."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from services.backend.main import build_app
from tests.services.backend.conftest import make_settings

TOKEN = "internal-token-for-tests-0123456789"


def next_body(**overrides: object) -> dict:
    body = {
        "owner_id": "alice", "title": "Water plants", "due_at": "2026-12-02T08:00:00+00:00",
        "timezone": "Europe/Berlin", "recurrence_rule": "FREQ=DAILY", "series_id": "s-1",
        "series_start": "2026-12-01T08:00:00+00:00", "occurrence_index": 2,
    }
    body.update(overrides)
    return body


def test_next_occurrence_is_created_once_however_often_it_is_asked(database_url: str) -> None:
    app = build_app(make_settings(database_url, internal_api_token=TOKEN))
    with TestClient(app) as client:
        headers = {"X-Internal-Token": TOKEN}
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.post("/internal/recurrences/next", json=next_body(),
                                                          headers=headers), range(6)))
        assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
        assert len({a.json()["id"] for a in answers}) == 1
        created = answers[0].json()
        assert created["owner_id"] == "alice"
        assert created["occurrence_index"] == 2
        assert created["series_id"] == "s-1"


def test_internal_route_refuses_callers_without_the_token(database_url: str) -> None:
    with TestClient(build_app(make_settings(database_url, internal_api_token=TOKEN))) as client:
        assert client.post("/internal/recurrences/next", json=next_body()).status_code == 403
        wrong = client.post("/internal/recurrences/next", json=next_body(), headers={"X-Internal-Token": "nope"})
        assert wrong.status_code == 403
    with TestClient(build_app(make_settings(database_url))) as client:  # no token configured: closed
        assert client.post("/internal/recurrences/next", json=next_body(),
                           headers={"X-Internal-Token": ""}).status_code == 403


def test_internal_route_validates_the_occurrence(database_url: str) -> None:
    with TestClient(build_app(make_settings(database_url, internal_api_token=TOKEN))) as client:
        bad = client.post("/internal/recurrences/next", json=next_body(occurrence_index=1, due_at="tomorrow"),
                          headers={"X-Internal-Token": TOKEN})
        assert bad.status_code == 422
        fields = {tuple(e["loc"]) for e in bad.json()["detail"]}
        assert ("body", "occurrence_index") in fields
        assert ("body", "due_at") in fields
