"""Each service's two OpenAPI documents: what clients may call and what only the sidecar calls, and
every error answer documented as the problem it is (services/platform/openapi.py, problems.py).

The fuzz run (tests/services/test_openapi_fuzz.py) checks that the answers match the public
documents; this checks what the documents promise, for all five services, without a request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.testclient import TestClient

from services.audit.main import build_app as build_audit
from services.backend.main import build_app as build_backend
from services.notification.config import NotificationSettings
from services.notification.main import build_app as build_notification
from services.platform.openapi import INTERNAL_DOCUMENT
from services.websocket.config import WebsocketSettings
from services.websocket.main import build_app as build_websocket
from services.worker.config import WorkerSettings
from services.worker.main import build_app as build_worker
from tests.services.audit.conftest import make_settings as audit_settings
from tests.services.backend.conftest import make_settings as backend_settings

BUILDERS: dict[str, Callable[[], FastAPI]] = {
    "backend": lambda: build_backend(backend_settings("sqlite://")),
    "audit": lambda: build_audit(audit_settings("sqlite://")),
    "worker": lambda: build_worker(WorkerSettings(app_env="development")),
    "notification": lambda: build_notification(NotificationSettings(app_env="development")),
    "websocket": lambda: build_websocket(WebsocketSettings(app_env="development")),
}
PUBLIC_PREFIX = "/api/"
INTERNAL_PREFIXES = ("/internal/", "/events/", "/job/")
OPERATIONAL = {"/healthz", "/readyz", "/metrics"}  # probes and scrapes: not an API, in neither document
PROBLEMS = {"#/components/schemas/Problem", "#/components/schemas/ValidationProblem"}


@pytest.fixture(params=sorted(BUILDERS))
def documents(request: pytest.FixtureRequest) -> tuple[FastAPI, dict[str, Any], dict[str, Any]]:
    """A service's app (not started: the documents need no database), its public and internal documents."""
    app = BUILDERS[request.param]()
    client = TestClient(app)
    public = client.get("/openapi.json")
    internal = client.get(INTERNAL_DOCUMENT)
    assert public.status_code == internal.status_code == 200
    return app, public.json(), internal.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_internal_routes_are_only_in_the_internal_document(
        documents: tuple[FastAPI, dict[str, Any], dict[str, Any]]) -> None:
    app, public, internal = documents
    assert all(path.startswith(PUBLIC_PREFIX) for path in public["paths"]), list(public["paths"])
    assert all(path.startswith(INTERNAL_PREFIXES) for path in internal["paths"]), list(internal["paths"])
    # Every operation of the app, as FastAPI would document them all in one, is in exactly one of the two.
    everything = get_openapi(title=app.title, version=app.version, routes=app.routes)
    served = {(path, method) for path, method, _ in operations(everything) if path not in OPERATIONAL}
    public_ops = {(path, method) for path, method, _ in operations(public)}
    internal_ops = {(path, method) for path, method, _ in operations(internal)}
    assert not public_ops & internal_ops
    assert public_ops | internal_ops == served


def test_every_error_answer_is_a_documented_problem(documents: tuple[FastAPI, dict[str, Any], dict[str, Any]]) -> None:
    _, public, internal = documents
    for document in (public, internal):
        schemas = document.get("components", {}).get("schemas", {})
        assert "HTTPValidationError" not in schemas  # FastAPI's 422 shape: no answer has it
        for path, method, operation in operations(document):
            where = f"{method.upper()} {path}"
            responses = operation["responses"]
            assert "500" in responses, where
            for status, response in responses.items():
                assert "X-Correlation-ID" in response["headers"], (where, status)
                if int(status) < 400:
                    continue
                [(media_type, content)] = response["content"].items()
                assert media_type == "application/problem+json", (where, status)
                assert content["schema"]["$ref"] in PROBLEMS, (where, status)
                assert content["schema"]["$ref"].split("/")[-1] in schemas, (where, status)
                assert (content["schema"]["$ref"].endswith("/ValidationProblem")) == (status == "422"), (where, status)


def test_authenticated_operations_document_the_refusals_and_their_headers(
        documents: tuple[FastAPI, dict[str, Any], dict[str, Any]]) -> None:
    _, public, _ = documents
    for path, method, operation in operations(public):
        if not operation.get("security"):
            continue
        responses, where = operation["responses"], f"{method.upper()} {path}"
        assert {"401", "403", "422", "503"} <= set(responses), where
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True, where
        assert responses["503"]["headers"]["Retry-After"]["required"] is True, where  # the identity provider
        if "If-Match" in {parameter["name"] for parameter in operation.get("parameters", [])}:
            assert {"400", "412"} <= set(responses), where
            assert "ETag" in responses["412"]["headers"], where
        if "requestBody" in operation:
            assert "400" in responses, where  # a body that is not JSON
