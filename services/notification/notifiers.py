"""Where a due reminder goes: a pluggable notifier (a structured log line, or a signed webhook).

Webhook deliveries are signed so the receiver can trust them and refuse replays:
`X-Todo-Timestamp` is the sending time (Unix seconds) and `X-Todo-Signature` is
`sha256=<hex HMAC-SHA256 over "<timestamp>.<raw body>">` with the shared webhook secret.
A receiver recomputes the HMAC over the exact bytes it got, compares in constant time
(`verify_signature`), and refuses timestamps older than a few minutes, so a captured request
cannot be replayed later. `X-Todo-Delivery` (task id and reminder time) lets it dedupe retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import httpx

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Todo-Signature"
TIMESTAMP_HEADER = "X-Todo-Timestamp"
DELIVERY_HEADER = "X-Todo-Delivery"
DEFAULT_TOLERANCE_S = 300


class NotifyError(RuntimeError):
    """Delivery failed for now (receiver down, non-2xx); the job trigger is retried."""


@dataclass(frozen=True)
class Reminder:
    """What the user is told: which task, due when."""

    task_id: str
    task_version: int
    user_id: str
    title: str
    due_at: str
    remind_at: str

    @property
    def delivery_id(self) -> str:
        """One id per task and reminder time: what deliveries are deduplicated by."""
        return f"{self.task_id}@{self.remind_at}"


@runtime_checkable
class Notifier(Protocol):
    async def notify(self, reminder: Reminder) -> None:
        """Deliver the reminder; raise NotifyError when it should be tried again."""


class LogNotifier:
    """A structured log line per reminder: the default, and enough where logs feed alerts."""

    async def notify(self, reminder: Reminder) -> None:
        log.info("reminder due", extra={"notification": asdict(reminder), "delivery_id": reminder.delivery_id})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Todo-Signature value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, timestamp: str | None, signature: str | None, *,
                     now: float | None = None, tolerance_s: int = DEFAULT_TOLERANCE_S) -> bool:
    """What a receiver runs: right signature over these bytes, and a timestamp that is fresh."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


class WebhookNotifier:
    """POSTs the reminder as JSON to a URL, signed with HMAC-SHA256 (see the module docstring)."""

    def __init__(self, url: str, secret: str, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout_s = timeout_s

    async def notify(self, reminder: Reminder) -> None:
        body = json.dumps({"type": "todo.reminder.due", **asdict(reminder)}, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.secret, timestamp, body), DELIVERY_HEADER: reminder.delivery_id,
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                response = await http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise NotifyError(f"webhook unreachable: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise NotifyError(f"webhook answered {response.status_code}")
