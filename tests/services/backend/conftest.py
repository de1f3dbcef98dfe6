"""Backend fixtures: the real app on SQLite and on a real PostgreSQL server, and token helpers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.backend.config import BackendSettings
from services.backend.main import build_app
from services.backend.models import OutboxEvent
from services.platform.auth import mint_dev_token
from tests.utils.postgres import PostgresServer, create_database

JWT_SECRET = "test-secret-0123456789-abcdefghijklmnop"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'backend.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return create_database(server, f"t_{uuid.uuid4().hex[:12]}")


def make_settings(database_url: str, **overrides: object) -> BackendSettings:
    values: dict[str, object] = {
        "app_env": "development", "secret_source": "env", "auth_dev_mode": True, "jwt_secret": JWT_SECRET,
        "database_url": database_url, "relay_enabled": False, "dapr_http_port": 1, "dapr_grpc_port": 2,
        "dapr_timeout_s": 1,
    }
    values.update(overrides)
    return BackendSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(build_app(make_settings(database_url))) as test_client:
        yield test_client


@pytest.fixture
def auth() -> Callable[[str], dict[str, str]]:
    def headers(user: str = "alice", **kwargs: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_dev_token(JWT_SECRET, user, **kwargs)}"}  # type: ignore[arg-type]

    return headers


def outbox(client: TestClient) -> list[tuple[str, str, dict]]:
    """Every event the backend wrote, in order: (topic, type, the CloudEvent as it will be published)."""
    with cast(FastAPI, client.app).state.database.sessions() as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        return [(r.topic, r.event_type, json.loads(r.payload)) for r in rows]
