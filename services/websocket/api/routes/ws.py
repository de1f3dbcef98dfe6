"""`/ws`: an authenticated WebSocket that pushes the caller's task updates as they happen.

Authentication (browsers cannot set an Authorization header on a WebSocket), in order:
1. `?token=<jwt>` in the URL (simple; the token may end up in proxy access logs, keep it short-lived);
2. subprotocols `Sec-WebSocket-Protocol: todo.bearer, <jwt>` (JS: `new WebSocket(url,
   ["todo.bearer", jwt])`); the server accepts with subprotocol `todo.bearer`;
3. else the first message must be `{"type": "auth", "token": "<jwt>"}` within AUTH_TIMEOUT_S.
A refused token closes with code 4401 (4403 when the token lacks scope `tasks:read`; 1013, try
again later, while the identity provider's keys cannot be fetched). Tokens are verified without
blocking the event loop (`TokenVerifier.verify_async`): a slow identity provider delays only the
connections that wait for its keys, never the sockets already open.

Server -> client messages (JSON):
- `{"type":"ready","user_id":...,"replayed":N}` once authenticated (after any replay);
- `{"type":"event","id":...,"event_type":"todo.task.updated.v1","time":...,"data":{...}}`;
- `{"type":"resync","reason":...}`: updates were missed (the `?last_event_id=` is no longer
  buffered here, or the client read too slowly); refetch GET /api/tasks, then carry on;
- `{"type":"ping","ts":...}` every HEARTBEAT_INTERVAL_S.
Client -> server: `{"type":"pong"}` (any message counts as alive; `{"type":"ping"}` is answered
with a pong). A client silent for IDLE_TIMEOUT_S is closed with code 4408.

Resume: reconnect with `?last_event_id=<id of the last event received>`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from prometheus_client import Gauge

from services.platform.auth import AuthError, KeysUnavailable, Principal, TokenVerifier
from services.platform.deps import VerifierDep
from services.platform.scopes import TASKS_READ
from services.websocket.api.deps import HubDep, SettingsDep
from services.websocket.config import WebsocketSettings
from services.websocket.hub import Subscriber

log = logging.getLogger(__name__)

router = APIRouter(tags=["websocket"])

SUBPROTOCOL = "todo.bearer"
REQUIRED_SCOPE = TASKS_READ
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_IDLE = 4408
CLOSE_TRY_AGAIN_LATER = 1013

CONNECTIONS = Gauge("websocket_connections", "Authenticated WebSocket clients connected", ["service"])


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _offered_token(ws: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to accept) from the query string or the offered subprotocols."""
    if ws.query_params.get("token"):
        return ws.query_params["token"], None
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if SUBPROTOCOL in offered:
        rest = [p for p in offered if p != SUBPROTOCOL]
        return (rest[0] if rest else None), SUBPROTOCOL
    return None, None


async def _verify(verifier: TokenVerifier, token: str | None) -> Principal:
    if not token:
        raise Refused(CLOSE_UNAUTHORIZED, "missing token")
    try:
        principal = await verifier.verify_async(token)
    except AuthError as exc:
        raise Refused(CLOSE_UNAUTHORIZED, str(exc)) from exc
    except KeysUnavailable as exc:
        raise Refused(CLOSE_TRY_AGAIN_LATER, str(exc)) from exc
    if REQUIRED_SCOPE not in principal.scopes:
        raise Refused(CLOSE_FORBIDDEN, f"token lacks scope {REQUIRED_SCOPE!r}")
    return principal


async def _first_message_token(ws: WebSocket, timeout_s: float) -> str | None:
    try:
        first = json.loads(await asyncio.wait_for(ws.receive_text(), timeout_s))
    except TimeoutError as exc:
        raise Refused(CLOSE_UNAUTHORIZED, "no auth message in time") from exc
    except (ValueError, KeyError) as exc:
        raise Refused(CLOSE_UNAUTHORIZED, "first message must be {\"type\":\"auth\",\"token\":...}") from exc
    if not isinstance(first, dict) or first.get("type") != "auth":
        raise Refused(CLOSE_UNAUTHORIZED, "first message must be {\"type\":\"auth\",\"token\":...}")
    token = first.get("token")
    return token if isinstance(token, str) else None


@router.websocket("/ws")
async def updates(ws: WebSocket, settings: SettingsDep, verifier: VerifierDep, hub: HubDep) -> None:
    token, subprotocol = _offered_token(ws)
    await ws.accept(subprotocol=subprotocol)
    try:
        if token is None:
            token = await _first_message_token(ws, settings.auth_timeout_s)
        principal = await _verify(verifier, token)
    except Refused as exc:
        await ws.close(exc.code, str(exc))
        return
    except WebSocketDisconnect:
        return
    subscriber, backlog = hub.subscribe(principal.user_id, ws.query_params.get("last_event_id"))
    CONNECTIONS.labels(settings.service_name).inc()
    log.info("client connected", extra={"user_id": principal.user_id, "resync": backlog is None,
                                        "replayed": len(backlog or [])})
    try:
        if backlog is None:
            await ws.send_json({"type": "resync", "reason": "last_event_id is no longer buffered"})
        else:
            for message in backlog:
                await ws.send_json(message)
        await ws.send_json({"type": "ready", "user_id": principal.user_id, "replayed": len(backlog or [])})
        await _pump(ws, subscriber, settings)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(subscriber)
        CONNECTIONS.labels(settings.service_name).dec()
        log.info("client disconnected", extra={"user_id": principal.user_id})


async def _pump(ws: WebSocket, subscriber: Subscriber, settings: WebsocketSettings) -> None:
    """Send queued updates and heartbeats; read the client's messages; close an idle client."""
    last_heard = time.monotonic()

    async def read() -> None:
        nonlocal last_heard
        while True:
            text = await ws.receive_text()
            last_heard = time.monotonic()
            try:
                message: Any = json.loads(text)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") == "ping":
                await ws.send_json({"type": "pong", "ts": time.time()})

    async def write() -> None:
        next_ping = time.monotonic() + settings.heartbeat_interval_s
        while True:
            if subscriber.overflowed:
                _drain(subscriber)
                await ws.send_json({"type": "resync", "reason": "updates were dropped for a slow client"})
            now = time.monotonic()
            if now - last_heard > settings.idle_timeout_s:
                await ws.close(CLOSE_IDLE, "no message from the client in time")
                return
            if now >= next_ping:
                await ws.send_json({"type": "ping", "ts": time.time()})
                next_ping = now + settings.heartbeat_interval_s
            wait = max(0.0, min(next_ping, last_heard + settings.idle_timeout_s) - now) + 0.001
            try:
                message = await asyncio.wait_for(subscriber.queue.get(), wait)
            except TimeoutError:
                continue
            await ws.send_json(message)

    tasks = [asyncio.create_task(read()), asyncio.create_task(write())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None and not isinstance(task.exception(), WebSocketDisconnect):
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _drain(subscriber: Subscriber) -> None:
    while not subscriber.queue.empty():
        subscriber.queue.get_nowait()
    subscriber.overflowed = False
