"""/ws with tokens from an identity provider (JWKS): a slow provider stalls only the connections that
wait for its keys, never the event loop, so open sockets keep receiving and cached keys keep working."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from services.platform.events import TOPIC_TASK_UPDATES
from services.websocket.config import WebsocketSettings
from services.websocket.main import build_app
from tests.utils.dapr_apps import ServedApp, serve
from tests.utils.events import delivered, snapshot, task_event
from tests.utils.jwks import AUDIENCE, ISSUER, IdentityProvider, identity_provider
from tests.utils.waiting import wait_until


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    with identity_provider() as idp:
        idp.publish("k1")
        yield idp


@pytest.fixture
def app(provider: IdentityProvider) -> Iterator[ServedApp]:
    # No cooldown: a new key id is fetched at once (a rotation); the timeout outlasts the stall.
    settings = WebsocketSettings(app_env="development", jwks_url=provider.url, jwt_issuer=ISSUER,
                                 jwt_audience=AUDIENCE, jwks_cooldown_s=0, jwks_timeout_s=30,
                                 dapr_http_port=1, dapr_grpc_port=2)
    with serve(build_app(settings)) as served:
        yield served


def socket(app: ServedApp, token: str) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{app.port}/ws?token={token}", open_timeout=10)


def receive(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if message["type"] != "ping":
            return message


def test_a_slow_identity_provider_stalls_no_other_socket(app: ServedApp, provider: IdentityProvider) -> None:
    with socket(app, provider.token("alice", kid="k1")) as alice:
        assert receive(alice)["type"] == "ready"
        assert provider.requests == 1

        # The provider rotates keys and becomes slow: bob's and dave's tokens name the new key, which
        # must be fetched; their verification waits for the provider's answer.
        provider.publish("k2")
        provider.stall()
        bob = socket(app, provider.token("bob", kid="k2"))
        dave = socket(app, provider.token("dave", kid="k2"))
        wait_until(lambda: provider.stalled == 1, 10, message="the key fetch to reach the provider")

        # Meanwhile an update reaches alice's open socket and carol (cached key) connects at once.
        event = task_event("updated", snapshot(owner="alice", title="Buy milk"))
        answer = httpx.post(f"{app.url}/events/{TOPIC_TASK_UPDATES}", content=delivered(event, TOPIC_TASK_UPDATES),
                            timeout=10)
        assert answer.json() == {"status": "SUCCESS"}
        assert receive(alice)["id"] == event.id
        with socket(app, provider.token("carol", kid="k1")) as carol:
            assert receive(carol) == {"type": "ready", "user_id": "carol", "replayed": 0}
        assert provider.stalled == 1  # all of that happened while the fetch was still held

        provider.release()
        with bob, dave:
            assert receive(bob)["user_id"] == "bob"
            assert receive(dave)["user_id"] == "dave"
        assert provider.requests == 2  # bob and dave waited for one fetch, not one each


def test_a_provider_that_does_not_answer_in_time_means_try_again_later(provider: IdentityProvider) -> None:
    provider.stall()
    settings = WebsocketSettings(app_env="development", jwks_url=provider.url, jwt_issuer=ISSUER,
                                 jwt_audience=AUDIENCE, jwks_timeout_s=1, dapr_http_port=1, dapr_grpc_port=2)
    with serve(build_app(settings)) as app, socket(app, provider.token("alice", kid="k1")) as ws, \
            pytest.raises(ConnectionClosed) as closed:
        receive(ws, timeout=15)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013  # try again later: not the token's fault
    # Closed by JWKS_TIMEOUT_S while the provider still held its answer (PyJWT's default waits 30 s).
    assert provider.stalled == 1
