"""The operational surface every service gets from the app factory."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.testclient import TestClient

from services.platform.app import create_app
from services.platform.settings import ServiceSettings

router = APIRouter()


@router.get("/boom")
def boom() -> None:
    raise RuntimeError("secret internals")


def make(ready: bool) -> TestClient:
    async def dependency() -> None:
        if not ready:
            raise RuntimeError("database unreachable")

    settings = ServiceSettings(service_name="demo", app_env="development")
    app = create_app(settings, title="demo", routers=[router], readiness={"database": dependency})
    return TestClient(app, raise_server_exceptions=False)


def test_liveness_readiness_and_metrics() -> None:
    with make(ready=True) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready", "checks": {"database": "ok"}}
        client.get("/boom")
        metrics = client.get("/metrics").text
        assert 'http_requests_total{method="GET",route="/boom",service="demo",status="500"}' in metrics
        assert "http_request_duration_seconds_bucket" in metrics
    with make(ready=False) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"]["database"] == "failing: database unreachable"


def test_unhandled_errors_never_leak_internals() -> None:
    with make(ready=True) as client:
        response = client.get("/boom", headers={"X-Correlation-ID": "c-1"})
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                                   "detail": "internal error", "instance": "/boom", "correlation_id": "c-1"}
        assert response.headers["x-correlation-id"] == "c-1"  # as on every other answer
        assert "secret" not in response.text
