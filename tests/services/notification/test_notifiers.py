"""The signed webhook against a real local HTTP receiver that verifies what it gets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.notification.notifiers import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NotifyError,
    Reminder,
    WebhookNotifier,
    sign,
    verify_signature,
)

SECRET = "webhook-secret-0123456789"
REMINDER = Reminder(task_id="t-1", task_version=3, user_id="alice", title="Pay rent",
                    due_at="2026-12-01T08:00:00+00:00", remind_at="2026-12-01T07:45:00+00:00")


@dataclass
class Receiver:
    url: str
    status: int = 204
    received: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)


def customer_check(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """The check a receiver writes from the documented scheme alone, with the standard library:
    "sha256=" + hex HMAC-SHA256 over "<timestamp>.<raw body>" (not our `verify_signature`)."""
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature) and abs(time.time() - int(timestamp)) <= 300


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook endpoint as a customer would write it: verifies the signature on the raw body."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = customer_check(SECRET, body, self.headers[TIMESTAMP_HEADER], self.headers[SIGNATURE_HEADER])
            state.received.append((dict(self.headers), body, ok))
            self.send_response(state.status if ok else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/todo"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_the_receiver_verifies_the_signed_delivery(receiver: Receiver) -> None:
    asyncio.run(WebhookNotifier(receiver.url, SECRET).notify(REMINDER))
    [(headers, body, ok)] = receiver.received
    assert ok, "the receiver must accept our signature"
    assert headers[DELIVERY_HEADER] == "t-1@2026-12-01T07:45:00+00:00"
    assert headers[SIGNATURE_HEADER].startswith("sha256=")
    payload = json.loads(body)
    assert payload == {"type": "todo.reminder.due", "task_id": "t-1", "task_version": 3, "user_id": "alice",
                       "title": "Pay rent", "due_at": REMINDER.due_at, "remind_at": REMINDER.remind_at}


def test_a_wrong_secret_is_refused_and_reported_as_a_failed_delivery(receiver: Receiver) -> None:
    with pytest.raises(NotifyError, match="401"):
        asyncio.run(WebhookNotifier(receiver.url, "not-the-secret").notify(REMINDER))
    assert receiver.received[0][2] is False


def test_a_failing_or_missing_receiver_is_a_retryable_error(receiver: Receiver) -> None:
    receiver.status = 503
    with pytest.raises(NotifyError, match="503"):
        asyncio.run(WebhookNotifier(receiver.url, SECRET).notify(REMINDER))
    with pytest.raises(NotifyError, match="unreachable"):
        asyncio.run(WebhookNotifier("http://127.0.0.1:1/none", SECRET, timeout_s=1).notify(REMINDER))


def test_the_signature_matches_a_vector_computed_elsewhere() -> None:
    """A known answer computed outside Python: `printf '%s' '1764576000.<body>' | openssl dgst -sha256
    -hmac webhook-secret-0123456789`."""
    body = b'{"task_id":"t-1","type":"todo.reminder.due"}'
    expected = "sha256=e4c07c378820f5a4cd54d3d14d2c1ed59d9eb6f1792779e1cee07fa064690862"
    assert sign(SECRET, 1764576000, body) == expected
    assert verify_signature(SECRET, body, "1764576000", expected, now=1764576000)


def test_tampering_and_replays_fail_verification() -> None:
    body = b'{"task_id":"t-1"}'
    now = int(time.time())
    signature = sign(SECRET, now, body)
    assert verify_signature(SECRET, body, str(now), signature)
    assert not verify_signature(SECRET, b'{"task_id":"t-2"}', str(now), signature)  # body changed
    assert not verify_signature(SECRET, body, str(now + 1), signature)  # timestamp changed
    old = now - 3600
    assert not verify_signature(SECRET, body, str(old), sign(SECRET, old, body))  # replayed an hour later
    assert verify_signature(SECRET, body, str(old), sign(SECRET, old, body), now=old + 10)
    assert not verify_signature(SECRET, body, None, signature)
    assert not verify_signature(SECRET, body, "soon", signature)
