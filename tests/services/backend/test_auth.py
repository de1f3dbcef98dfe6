"""Authentication and tenant isolation: no user can see or change another user's tasks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from services.backend.main import build_app
from tests.services.backend.conftest import JWT_SECRET, make_settings

Auth = Callable[..., dict[str, str]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_requests_without_a_valid_token_get_401(client: TestClient) -> None:
    now = int(time.time())
    claims = {"sub": "alice", "iss": "todo-dev", "aud": "todo-api", "iat": now, "exp": now + 60}
    cases = {
        "missing": {},
        "not bearer": {"Authorization": "Basic YWxpY2U6cHc="},
        "garbage": bearer("not-a-jwt"),
        "wrong key": bearer(jwt.encode(claims, "another-secret-another-secret-xx", algorithm="HS256")),
        "expired": bearer(jwt.encode({**claims, "exp": now - 3600}, JWT_SECRET, algorithm="HS256")),
        "wrong audience": bearer(jwt.encode({**claims, "aud": "other"}, JWT_SECRET, algorithm="HS256")),
        "wrong issuer": bearer(jwt.encode({**claims, "iss": "evil"}, JWT_SECRET, algorithm="HS256")),
        "no subject": bearer(jwt.encode({k: v for k, v in claims.items() if k != "sub"}, JWT_SECRET,
                                        algorithm="HS256")),
        "alg none": bearer(jwt.encode(claims, "", algorithm="none")),
    }
    for name, headers in cases.items():
        response = client.get("/api/tasks", headers=headers)
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        assert "detail" in response.json(), name


def test_a_token_without_the_write_scope_cannot_write(client: TestClient, auth: Auth) -> None:
    read_only = auth("alice", scopes="tasks:read")
    assert client.get("/api/tasks", headers=read_only).status_code == 200
    denied = client.post("/api/tasks", json={"title": "x"}, headers=read_only)
    assert denied.status_code == 403
    assert "tasks:write" in denied.json()["detail"]


def test_users_never_see_or_touch_each_others_tasks(client: TestClient, auth: Auth) -> None:
    alice_task = client.post("/api/tasks", json={"title": "alice's"}, headers=auth("alice")).json()
    client.post("/api/tasks", json={"title": "bob's"}, headers=auth("bob"))
    path = f"/api/tasks/{alice_task['id']}"
    assert [t["title"] for t in client.get("/api/tasks", headers=auth("bob")).json()["items"]] == ["bob's"]
    assert client.get(path, headers=auth("bob")).status_code == 404
    assert client.patch(path, json={"title": "hijacked"}, headers=auth("bob")).status_code == 404
    assert client.post(f"{path}/complete", headers=auth("bob")).status_code == 404
    assert client.delete(path, headers=auth("bob")).status_code == 404
    mine = client.get(path, headers=auth("alice")).json()
    assert mine["title"] == "alice's"
    assert mine["status"] == "pending"
    assert mine["version"] == 1


def test_idempotency_keys_are_per_user(client: TestClient, auth: Auth) -> None:
    a = client.post("/api/tasks", json={"title": "same"}, headers={**auth("alice"), "Idempotency-Key": "k"})
    b = client.post("/api/tasks", json={"title": "same"}, headers={**auth("bob"), "Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A real JWKS endpoint on loopback, as an identity provider would serve it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json", key
    server.shutdown()


def test_jwks_mode_accepts_the_providers_tokens_and_refuses_dev_tokens(
    database_url: str, jwks_server: tuple[str, rsa.RSAPrivateKey], auth: Auth
) -> None:
    url, key = jwks_server
    settings = make_settings(database_url, jwks_url=url, jwt_issuer="https://idp.example", jwt_audience="todo")
    now = int(time.time())
    token = jwt.encode({"sub": "carol", "iss": "https://idp.example", "aud": "todo", "exp": now + 60},
                       key, algorithm="RS256", headers={"kid": "k1"})
    with TestClient(build_app(settings)) as client:
        created = client.post("/api/tasks", json={"title": "from idp"}, headers=bearer(token))
        assert created.status_code == 201
        assert created.json()["owner_id"] == "carol"
        # An HS256 token signed with the (still configured) shared secret must not pass in JWKS mode.
        assert client.get("/api/tasks", headers=auth("carol")).status_code == 401
