"""Bad input on every endpoint gets a clear 4xx with field-level messages, never a 500."""

from __future__ import annotations

from collections.abc import Callable

import jsonschema
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Auth = Callable[..., dict[str, str]]
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def fields_in_error(response) -> set[str]:
    """The fields a 422 problem lists in `errors` (services/platform/problems.py)."""
    assert response.headers["content-type"] == "application/problem+json"
    return {str(error["loc"][-1]) for error in response.json().get("errors", [])}


@pytest.mark.parametrize(("body", "field"), [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": 5}, "title"),
    ({"title": "ok", "priority": "critical"}, "priority"),
    ({"title": "ok", "tags": ["a", "a"]}, "tags"),
    ({"title": "ok", "tags": ["x" * 51]}, "tags"),
    ({"title": "ok", "tags": [str(i) for i in range(21)]}, "tags"),
    ({"title": "ok", "due_at": "2026-12-01T09:00:00"}, "due_at"),
    ({"title": "ok", "due_at": "next tuesday"}, "due_at"),
    ({"title": "ok", "timezone": "Mars/Olympus"}, "timezone"),
    ({"title": "ok", "timezone": "America"}, "timezone"),  # a directory in the zone database
    ({"title": "ok", "timezone": "localtime"}, "timezone"),  # the host's zone, not an IANA name
    ({"title": "ok", "timezone": "A" * 300}, "timezone"),
    ({"title": "ok", "due_at": "2026-12-01T09:00:00Z", "recurrence_rule": "FREQ=HOURLY"}, "recurrence_rule"),
    ({"title": "ok", "due_at": "2026-12-01T09:00:00Z", "recurrence_rule": "FREQ=DAILY;COUNT=0"},
     "recurrence_rule"),
    ({"title": "ok", "due_at": "2026-12-01T09:00:00Z", "reminder_offset_minutes": -5},
     "reminder_offset_minutes"),
    ({"title": "ok", "owner_id": "mallory"}, "owner_id"),
])
def test_create_names_the_bad_field(client: TestClient, auth: Auth, body: dict, field: str) -> None:
    response = client.post("/api/tasks", json=body, headers=auth())
    assert response.status_code == 422, response.text
    assert field in fields_in_error(response)


def test_create_refuses_cross_field_nonsense(client: TestClient, auth: Auth) -> None:
    for body in ({"title": "x", "recurrence_rule": "FREQ=DAILY"}, {"title": "x", "reminder_offset_minutes": 5}):
        response = client.post("/api/tasks", json=body, headers=auth())
        assert response.status_code == 422
        assert "needs due_at" in response.text


def test_malformed_json_and_wrong_content(client: TestClient, auth: Auth) -> None:
    """A body that cannot be parsed is a malformed request (400); JSON of the wrong shape is a 422."""
    json_type = {**auth(), "Content-Type": "application/json"}
    not_json = client.post("/api/tasks", content=b"{not json", headers=json_type)
    assert (not_json.status_code, not_json.headers["content-type"]) == (400, "application/problem+json")
    assert not_json.json()["detail"].startswith("the body is not JSON: Expecting property name")
    not_utf8 = client.patch(f"/api/tasks/{UNKNOWN}", content='{"title": "é"}'.encode("latin-1"), headers=json_type)
    assert (not_utf8.status_code, not_utf8.json()["detail"]) == (400, "the body is not JSON in UTF-8")
    response = client.post("/api/tasks", json=["a", "list"], headers=auth())
    assert response.status_code == 422
    assert fields_in_error(response) == {"body"}


@pytest.mark.parametrize("params", [
    {"status": "done"}, {"limit": 0}, {"limit": 201}, {"offset": -1}, {"sort": "owner_id"},
    {"due_after": "yesterday"}, {"due_before": "2026-12-01T00:00:00"}, {"tag": ""},
])
def test_list_rejects_bad_query_parameters(client: TestClient, auth: Auth, params: dict) -> None:
    assert client.get("/api/tasks", params=params, headers=auth()).status_code == 422


def test_unknown_and_malformed_ids(client: TestClient, auth: Auth) -> None:
    for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/complete")):
        kwargs = {"json": {"title": "x"}} if method == "PATCH" else {}
        unknown = client.request(method, f"/api/tasks/{UNKNOWN}{suffix}", headers=auth(), **kwargs)
        assert unknown.status_code == 404
        assert UNKNOWN in unknown.json()["detail"]
        malformed = client.request(method, f"/api/tasks/not-a-uuid{suffix}", headers=auth(), **kwargs)
        assert malformed.status_code == 422
        assert "task_id" in fields_in_error(malformed)


def test_update_validation(client: TestClient, auth: Auth) -> None:
    task = client.post("/api/tasks", json={"title": "x"}, headers=auth()).json()
    path = f"/api/tasks/{task['id']}"
    assert client.patch(path, json={}, headers=auth()).status_code == 422
    assert "title" in fields_in_error(client.patch(path, json={"title": None}, headers=auth()))
    assert "status" in fields_in_error(client.patch(path, json={"status": "completed"}, headers=auth()))
    assert client.patch(path, json={"recurrence_rule": "FREQ=DAILY"}, headers=auth()).status_code == 409
    bad_etag = client.patch(path, json={"title": "y"}, headers={**auth(), "If-Match": "yesterday"})
    assert bad_etag.status_code == 400
    assert "If-Match" in bad_etag.json()["detail"]


def test_idempotency_key_reused_with_another_body(client: TestClient, auth: Auth) -> None:
    headers = {**auth(), "Idempotency-Key": "retry-1"}
    first = client.post("/api/tasks", json={"title": "a"}, headers=headers)
    again = client.post("/api/tasks", json={"title": "a"}, headers=headers)
    other = client.post("/api/tasks", json={"title": "b"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == again.json()["id"]
    assert other.status_code == 422
    problem = other.json()
    assert problem["errors"] == [{"loc": ["header", "Idempotency-Key"],
                                  "msg": "was already used with a different request", "type": "idempotency_key_reused"}]
    assert "different request" in problem["detail"]
    # The shape the document promises for this operation's 422 (issue 15: it was a bare string).
    document = client.get("/openapi.json").json()
    [(media_type, content)] = document["paths"]["/api/tasks"]["post"]["responses"]["422"]["content"].items()
    assert (media_type, other.headers["content-type"]) == ("application/problem+json",) * 2
    jsonschema.Draft202012Validator({**content["schema"], "components": document["components"]}).validate(problem)
    assert client.get("/api/tasks", headers=auth()).json()["total"] == 1
    too_long = client.post("/api/tasks", json={"title": "a"}, headers={**auth(), "Idempotency-Key": "k" * 256})
    assert too_long.status_code == 422


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=4),
    max_leaves=12,
)
task_like = st.fixed_dictionaries({}, optional={
    "title": json_values, "description": json_values, "priority": json_values, "tags": json_values,
    "due_at": json_values | st.datetimes().map(str), "timezone": json_values | st.sampled_from(["UTC", "Europe/Paris"]),
    "reminder_offset_minutes": json_values, "recurrence_rule": json_values | st.sampled_from(
        ["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,FR", "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3"]),
})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=task_like | json_values)
def test_no_body_ever_causes_a_server_error(client: TestClient, auth: Auth, body: object) -> None:
    created = client.post("/api/tasks", json=body, headers=auth())
    assert created.status_code in (201, 422), created.text
    target = created.json()["id"] if created.status_code == 201 else UNKNOWN
    patched = client.patch(f"/api/tasks/{target}", json=body, headers=auth())
    assert patched.status_code in (200, 404, 409, 422), patched.text
