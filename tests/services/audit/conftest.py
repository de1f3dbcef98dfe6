"""Audit fixtures: the real app on SQLite and on a real PostgreSQL server (the backend's `database_url`
fixture: a fresh database per test), and token helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from services.audit.config import AuditSettings
from services.audit.main import build_app
from services.platform.auth import mint_dev_token
from tests.services.backend.conftest import database_url

__all__ = ["database_url", "make_settings"]  # database_url: the SQLite/PostgreSQL fixture, shared

JWT_SECRET = "audit-test-secret-0123456789-abcdefghij"


def make_settings(database_url: str, **overrides: object) -> AuditSettings:
    values: dict[str, object] = {"app_env": "development", "secret_source": "env", "jwt_secret": JWT_SECRET,
                                 "database_url": database_url, "dapr_http_port": 1, "dapr_grpc_port": 2,
                                 "dapr_timeout_s": 1, **overrides}
    return AuditSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(build_app(make_settings(database_url))) as test_client:
        yield test_client


@pytest.fixture
def auth() -> Callable[..., dict[str, str]]:
    def headers(user: str = "alice", scopes: str = "tasks:read") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_dev_token(JWT_SECRET, user, scopes=scopes)}"}

    return headers
