"""Authentication and tenant isolation: no user can see or change another user's tasks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from console.sandbox.ports import free_port
from services.backend.main import build_app
from tests.services.backend.conftest import JWT_SECRET, make_settings
from tests.utils.jwks import AUDIENCE, ISSUER, IdentityProvider, identity_provider
from tests.utils.waiting import wait_until

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
        # Never PyJWT's own text ("Signature verification failed", "Invalid audience"...): only the
        # client's next step. The reason is logged for operators.
        expected = {"missing": "missing bearer token", "not bearer": "missing bearer token", "expired": "token expired"}
        assert response.json()["detail"] == expected.get(name, "invalid token"), name


def test_a_token_without_the_write_scope_cannot_write(client: TestClient, auth: Auth) -> None:
    read_only = auth("alice", scopes="tasks:read")
    assert client.get("/api/tasks", headers=read_only).status_code == 200
    denied = client.post("/api/tasks", json={"title": "x"}, headers=read_only)
    assert denied.status_code == 403
    assert "tasks:write" in denied.json()["detail"]


def test_a_token_without_a_scope_claim_gets_nothing(client: TestClient) -> None:
    """Scopes fail closed: no claim means no scopes, not every scope."""
    now = int(time.time())
    unscoped = jwt.encode({"sub": "alice", "iss": "todo-dev", "aud": "todo-api", "iat": now, "exp": now + 60},
                          JWT_SECRET, algorithm="HS256")
    for answer in (client.get("/api/tasks", headers=bearer(unscoped)),
                   client.post("/api/tasks", json={"title": "x"}, headers=bearer(unscoped))):
        assert answer.status_code == 403
        assert answer.json()["detail"].startswith("token lacks scope")


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


def test_a_shared_secret_shorter_than_32_bytes_stops_the_start(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'b.db'}", jwt_secret="only-31-bytes-long-0123456789ab")
    with pytest.raises(ValueError, match="at least 32 bytes"), TestClient(build_app(settings)):
        pass


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    with identity_provider() as idp:
        idp.publish("k-rsa")
        idp.publish("k-ec", kind="ec")
        yield idp


def jwks_client(tmp_path: Path, jwks_url: str, **overrides: object) -> TestClient:
    settings = make_settings(f"sqlite:///{tmp_path / 'b.db'}", auth_dev_mode=False, jwks_url=jwks_url,
                             jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **overrides)
    return TestClient(build_app(settings))


def test_jwks_mode_accepts_rs256_and_es256_from_the_provider_only(
        tmp_path: Path, provider: IdentityProvider, auth: Auth) -> None:
    with jwks_client(tmp_path, provider.url) as client:
        created = client.post("/api/tasks", json={"title": "from idp"}, headers=bearer(provider.token("carol")))
        assert created.status_code == 201
        assert created.json()["owner_id"] == "carol"
        es256 = provider.token("dave", kid="k-ec", alg="ES256", scope=None, scp=["tasks:read"])  # Entra/Okta style
        assert client.get("/api/tasks", headers=bearer(es256)).status_code == 200
        refused = {
            # An HS256 token signed with the (still configured) shared secret must not pass in JWKS mode.
            "dev token": auth("carol"),
            # PS256 with the provider's own RSA key: a valid signature, but not an algorithm we accept.
            "PS256": bearer(provider.token("carol", alg="PS256")),
            "no kid": bearer(jwt.encode({"sub": "carol", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
                                        provider.rsa, algorithm="RS256")),
            "unknown kid": bearer(provider.token("carol", kid="k-unknown")),
            "wrong audience": bearer(provider.token("carol", aud="someone-else")),
        }
        for name, headers in refused.items():
            answer = client.get("/api/tasks", headers=headers)
            assert answer.status_code == 401, name
            assert answer.json()["detail"] == "invalid token", name


def test_unknown_key_ids_refetch_the_keys_at_most_once_per_cooldown(tmp_path: Path, provider: IdentityProvider) -> None:
    """Forged `kid`s must not turn every request into a request to the identity provider."""
    with jwks_client(tmp_path, provider.url, jwks_cooldown_s=600) as client:
        assert client.get("/api/tasks", headers=bearer(provider.token())).status_code == 200
        for n in range(5):
            assert client.get("/api/tasks", headers=bearer(provider.token(kid=f"forged-{n}"))).status_code == 401
        assert provider.requests == 1
    with jwks_client(tmp_path, provider.url, jwks_cooldown_s=0) as client:
        assert client.get("/api/tasks", headers=bearer(provider.token())).status_code == 200
        before = provider.requests
        provider.publish("k-rotated")  # the provider rotates keys: without a cooldown the new kid is fetched at once
        assert client.get("/api/tasks", headers=bearer(provider.token(kid="k-rotated"))).status_code == 200
        assert provider.requests == before + 1


def test_an_unreachable_provider_is_a_503_not_a_401(tmp_path: Path, provider: IdentityProvider) -> None:
    with jwks_client(tmp_path, f"http://127.0.0.1:{free_port()}/jwks.json", jwks_timeout_s=1) as client:
        answer = client.get("/api/tasks", headers=bearer(provider.token()))
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"


def test_a_slow_key_refetch_holds_up_no_request_with_a_cached_key(tmp_path: Path, provider: IdentityProvider) -> None:
    with jwks_client(tmp_path, provider.url, jwks_cooldown_s=0, jwks_timeout_s=30) as client, \
            ThreadPoolExecutor(1) as pool:
        assert client.get("/api/tasks", headers=bearer(provider.token())).status_code == 200
        provider.publish("k-new")
        provider.stall()
        waiting = pool.submit(client.get, "/api/tasks", headers=bearer(provider.token(kid="k-new")))
        wait_until(lambda: provider.stalled == 1, 10, message="the refetch to reach the provider")
        assert client.get("/api/tasks", headers=bearer(provider.token())).status_code == 200
        assert provider.stalled == 1  # answered while the refetch was still held
        provider.release()
        assert waiting.result(timeout=30).status_code == 200
