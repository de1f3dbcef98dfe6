"""Schema-driven fuzzing: every answer of the public APIs conforms to their own OpenAPI documents.

Schemathesis reads each app's `/openapi.json` (in process, through ASGI), generates requests from
it, requests that fit the document and requests that break it, and checks every answer against the
same document: any 5xx, a status the document does not list for the operation, a body that does
not match the documented schema or content type, a documented required header that is missing, a
request the document says is invalid being accepted, or a protected operation answering without a
token fails the test, with the request as a curl command to replay.

The apps run on the real PostgreSQL server. Requests carry a dev token minted as the sandbox mints
them. Paths that name a task get a random id (404) or a task that exists, pending or completed,
made afresh for each operation, so the answers of real tasks (200, 204, 409, 412) are fuzzed too.
The run is bounded by a fixed number of examples per operation and mode (220 requests to the task
API, 40 per token to the audit API) and derandomized: every run sends the same requests, so a failure
in CI replays on a laptop.

Schemathesis's own pytest integration (`schema.parametrize()`) is not used: its lazy loader reads
a pytest internal that pytest 9.2 removed. Its Python API (`as_strategy` + `call_and_validate`)
is the same engine.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.audit.main import build_app as build_audit
from services.backend.main import build_app as build_backend
from services.platform.auth import mint_dev_token
from tests.services.audit.conftest import JWT_SECRET as AUDIT_SECRET
from tests.services.audit.conftest import make_settings as audit_settings
from tests.services.backend.conftest import JWT_SECRET as BACKEND_SECRET
from tests.services.backend.conftest import make_settings as backend_settings
from tests.utils.events import delivered, snapshot, task_event
from tests.utils.postgres import PostgresServer, create_database

pytestmark = pytest.mark.postgres

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, ignored_auth]
# Per operation, generation mode and task: 220 requests for the task API (6 operations). The audit
# API has one operation with a dozen query parameters: more examples, 40 requests per token.
EXAMPLES = 10
AUDIT_EXAMPLES = 20


Answers = Counter[tuple[GenerationMode, str, int]]


def fuzz(app: FastAPI, token: str, *, tasks: Callable[[], Sequence[str]] = tuple,
         examples: int = EXAMPLES) -> Answers:
    """Fuzz every operation of the app's public document, authenticated with `token`: how many
    answers of each status each operation gave to requests that fit the document and that break it.

    Requests that fit the document go to a random id and to each task `tasks()` makes for the
    operation; requests that break it, to a random id (what they break is the body, a header or the
    query)."""
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"HTTPBearer": {"bearer": token}}}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    answers: Answers = Counter()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            pytest.fail(f"the document has an operation schemathesis cannot read: {result.err()}")
        operation = result.ok()
        targets = [{"task_id": task} for task in tasks()] if "{task_id}" in operation.path else []
        for mode, path_parameters in [(GenerationMode.POSITIVE, None),
                                      *((GenerationMode.POSITIVE, target) for target in targets),
                                      (GenerationMode.NEGATIVE, None)]:
            _run(operation.as_strategy(generation_mode=mode, path_parameters=path_parameters),
                 answers, mode, operation.label, examples)
    return answers


def _run(cases: SearchStrategy[schemathesis.Case], answers: Answers, mode: GenerationMode, label: str,
         examples: int) -> None:
    @given(case=cases)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        answers[(mode, label, case.call_and_validate(checks=CHECKS).status_code)] += 1

    check()


def assert_reached_the_routes(answers: Answers) -> None:
    """Every request that fits the document carried the token (those that break it may lack one on
    purpose): the fuzz reached what lies behind authentication."""
    fitting = Counter({status: n for (mode, _, status), n in answers.items() if mode == GenerationMode.POSITIVE})
    assert 401 not in fitting, answers
    assert any(200 <= status < 300 for status in fitting), answers


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> str:
    """A fresh database on the real PostgreSQL server, what the services run on in the cluster.
    Only there: the other backend and audit tests run on SQLite too, and the run stays short."""
    return create_database(postgres_server, f"fuzz_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def backend(database_url: str) -> Iterator[TestClient]:
    with TestClient(build_backend(backend_settings(database_url))) as client:
        yield client


def test_the_task_api_answers_as_documented(backend: TestClient) -> None:
    token = mint_dev_token(BACKEND_SECRET, "alice")
    auth = {"Authorization": f"Bearer {token}"}

    def tasks() -> list[str]:
        """A pending task with a reminder and a completed one, fresh for each operation."""
        pending = backend.post("/api/tasks", headers=auth, json={
            "title": "Pay rent", "due_at": "2027-03-01T09:00:00Z", "reminder_offset_minutes": 30}).json()
        completed = backend.post("/api/tasks", headers=auth, json={"title": "Water plants"}).json()
        assert backend.post(f"/api/tasks/{completed['id']}/complete", headers=auth).status_code == 200
        return [pending["id"], completed["id"]]

    answers = fuzz(cast(FastAPI, backend.app), token, tasks=tasks)
    assert_reached_the_routes(answers)
    # The answers of real tasks and of broken requests were fuzzed too, not only 404s and 422s.
    statuses = {status for _, _, status in answers}
    assert {200, 201, 204, 400, 404, 409, 412, 422} <= statuses, answers
    assert sum(answers.values()) >= 150


@pytest.mark.parametrize("scopes", ["tasks:read", "audit:read"])
def test_the_audit_api_answers_as_documented(database_url: str, scopes: str) -> None:
    """As a user (their own entries; another user's is a 403) and as an operator (everyone's)."""
    with TestClient(build_audit(audit_settings(database_url))) as audit:
        for owner in ("alice", "bob"):  # entries to page through, recorded as the sidecar delivers them
            event = task_event("created", snapshot(owner=owner))
            assert audit.post("/events/task-events", content=delivered(event, "task-events")).status_code == 200
        answers = fuzz(cast(FastAPI, audit.app), mint_dev_token(AUDIT_SECRET, "alice", scopes=scopes),
                       examples=AUDIT_EXAMPLES)
    assert_reached_the_routes(answers)
