"""/ws end to end in one process: auth variants, isolation, resume, resync and heartbeats."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from starlette.websockets import WebSocketDisconnect

from services.platform.auth import mint_dev_token
from services.websocket.config import WebsocketSettings
from services.websocket.main import build_app
from tests.utils.events import delivered, snapshot, task_event

SECRET = "ws-test-secret-0123456789-abcdefghijkl"


def token(user: str = "alice", scopes: str = "tasks:read") -> str:
    return mint_dev_token(SECRET, user, scopes=scopes)


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    overrides = getattr(request, "param", {})
    settings = WebsocketSettings(app_env="development", jwt_secret=SECRET, dapr_http_port=1, dapr_grpc_port=2,
                                 dapr_timeout_s=1, **overrides)
    with TestClient(build_app(settings)) as test_client:
        yield test_client


def update(client: TestClient, user: str, task_id: str = "t-1", action: str = "updated") -> str:
    event = task_event(action, snapshot(task_id=task_id, owner=user))  # type: ignore[arg-type]
    answer = client.post("/events/task-updates", content=delivered(event, "task-updates"))
    assert answer.json() == {"status": "SUCCESS"}
    return event.id


def connected() -> float:
    return REGISTRY.get_sample_value("websocket_connections", {"service": "websocket"}) or 0.0


def test_each_user_receives_only_their_own_updates(client: TestClient) -> None:
    before = connected()
    with client.websocket_connect(f"/ws?token={token('alice')}") as alice, \
            client.websocket_connect(f"/ws?token={token('bob')}") as bob:
        assert alice.receive_json()["type"] == "ready"
        assert bob.receive_json()["user_id"] == "bob"
        assert connected() == before + 2
        update(client, "bob", "t-bob")
        first = update(client, "alice", "t-alice")
        got = alice.receive_json()
        assert got["type"] == "event"
        assert got["id"] == first
        assert got["data"]["task"]["id"] == "t-alice"
        assert got["event_type"] == "todo.task.updated.v1"
        assert bob.receive_json()["data"]["task"]["id"] == "t-bob"
        # Bob's next message is his own next update, not alice's.
        update(client, "bob", "t-bob-2")
        assert bob.receive_json()["data"]["task"]["id"] == "t-bob-2"


def test_token_by_subprotocol_and_by_first_message(client: TestClient) -> None:
    with client.websocket_connect("/ws", subprotocols=["todo.bearer", token()]) as ws:
        assert ws.accepted_subprotocol == "todo.bearer"
        assert ws.receive_json() == {"type": "ready", "user_id": "alice", "replayed": 0}
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "auth", "token": token("bob")})
        assert ws.receive_json()["user_id"] == "bob"


# The tokens carry the second they were minted in, so the cases get ids of their own: two xdist workers
# collecting a second apart would otherwise see different tests, and xdist refuses to run them at all.
@pytest.mark.parametrize(("url", "first", "code"), [
    ("/ws?token=not-a-jwt", None, 4401),
    (f"/ws?token={token(scopes='tasks:write')}", None, 4403),
    (f"/ws?token={token(scopes='')}", None, 4403),  # no scopes: fail closed
    ("/ws", {"type": "hello"}, 4401),
    ("/ws", {"type": "auth", "token": mint_dev_token('other-secret-0123456789-abcdefghi', 'eve')}, 4401),
], ids=["not-a-jwt", "write-scope-only", "no-scopes", "first-message-not-auth", "foreign-signature"])
def test_bad_or_missing_tokens_close_with_a_clear_code(client: TestClient, url: str, first: dict | None,
                                                       code: int) -> None:
    with client.websocket_connect(url) as ws:
        if first is not None:
            ws.send_json(first)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == code
    assert closed.value.reason


@pytest.mark.parametrize("client", [{"auth_timeout_s": 0.2}], indirect=True)
def test_a_client_that_never_authenticates_is_closed(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 4401


def test_a_reconnecting_client_catches_up_from_its_last_event_id(client: TestClient) -> None:
    seen = update(client, "alice", "t-1")
    missed = [update(client, "alice", f"t-{n}") for n in (2, 3)]
    update(client, "bob", "t-bob")
    with client.websocket_connect(f"/ws?token={token()}&last_event_id={seen}") as ws:
        replayed = [ws.receive_json(), ws.receive_json()]
        assert [m["id"] for m in replayed] == missed
        assert ws.receive_json() == {"type": "ready", "user_id": "alice", "replayed": 2}
        live = update(client, "alice", "t-4")
        assert ws.receive_json()["id"] == live


@pytest.mark.parametrize("client", [{"resume_buffer_size": 2}], indirect=True)
def test_an_id_no_longer_buffered_means_resync(client: TestClient) -> None:
    gone = update(client, "alice", "t-1")
    update(client, "alice", "t-2")
    update(client, "alice", "t-3")
    with client.websocket_connect(f"/ws?token={token()}&last_event_id={gone}") as ws:
        assert ws.receive_json()["type"] == "resync"
        assert ws.receive_json() == {"type": "ready", "user_id": "alice", "replayed": 0}


@pytest.mark.parametrize("client", [{"heartbeat_interval_s": 0.1, "idle_timeout_s": 0.5}], indirect=True)
def test_heartbeats_keep_a_live_client_and_close_a_silent_one(client: TestClient) -> None:
    with client.websocket_connect(f"/ws?token={token()}") as ws:
        assert ws.receive_json()["type"] == "ready"
        for _ in range(8):  # 8 pings answered: well past the idle timeout, still open
            assert ws.receive_json()["type"] == "ping"
            ws.send_json({"type": "pong"})
        ws.send_json({"type": "ping"})
        assert {ws.receive_json()["type"] for _ in range(2)} >= {"pong"}
        def read_until_closed() -> None:
            while True:  # now silent: pings keep coming until the idle close
                assert ws.receive_json()["type"] == "ping"

        with pytest.raises(WebSocketDisconnect) as closed:
            read_until_closed()
    assert closed.value.code == 4408
