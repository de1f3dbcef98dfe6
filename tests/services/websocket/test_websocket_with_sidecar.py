"""Real-time sync for real: a task update published through Dapr reaches the owner's browser
socket through Kafka, the dev sidecar and /ws, and nobody else's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from console.sandbox.broker import Broker
from services.platform.auth import mint_dev_token
from services.platform.events import TOPIC_TASK_UPDATES
from services.websocket.config import WebsocketSettings
from services.websocket.main import build_app
from tests.utils.dapr_apps import Ports, Publisher, ServedApp, mesh, serve
from tests.utils.events import snapshot, task_event

pytestmark = pytest.mark.broker
SECRET = "ws-sidecar-secret-0123456789-abcdefghij"


@dataclass
class World:
    app: ServedApp
    publisher: Publisher

    def ws(self, user: str, *extra: str):
        query = "&".join((f"token={mint_dev_token(SECRET, user)}", *extra))
        return connect(f"ws://127.0.0.1:{self.app.port}/ws?{query}", open_timeout=10)


@pytest.fixture(scope="module")
def world(kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("websocket-sidecar")
    ports = Ports()
    settings = WebsocketSettings(app_env="development", jwt_secret=SECRET, **ports.settings())
    with mesh(root / "mesh", kafka_broker.bootstrap) as dapr, serve(build_app(settings), ports.app) as app:
        dapr.sidecar("websocket", ports)
        yield World(app, dapr.publisher())


def receive(ws, timeout: float = 30) -> dict:
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if message["type"] != "ping":
            return message


def test_a_published_update_reaches_only_its_owner(world: World) -> None:
    with world.ws("dave") as dave, world.ws("erin") as erin:
        assert receive(dave)["type"] == "ready"
        assert receive(erin)["type"] == "ready"
        event = task_event("updated", snapshot(owner="dave", title="Call mum"))
        world.publisher.publish(TOPIC_TASK_UPDATES, event)
        got = receive(dave)
        assert got["id"] == event.id
        assert got["data"]["task"]["title"] == "Call mum"
        # Dave's update has been fanned out (he has it). Erin's next message must be her own marker,
        # published after it: had dave's update reached her, it would come first.
        marker = task_event("updated", snapshot(owner="erin", title="marker"))
        world.publisher.publish(TOPIC_TASK_UPDATES, marker)
        assert receive(erin)["id"] == marker.id
    # Reconnecting with the last id seen: nothing missed, nothing replayed twice.
    with world.ws("dave", f"last_event_id={event.id}") as again:
        assert receive(again) == {"type": "ready", "user_id": "dave", "replayed": 0}


def test_a_refused_token_closes_with_4401(world: World) -> None:
    with connect(f"ws://127.0.0.1:{world.app.port}/ws?token=forged", open_timeout=10) as ws, \
            pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
