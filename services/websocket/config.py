"""WebSocket service settings: token verification (shared with the backend) and connection limits."""

from __future__ import annotations

from pydantic import Field

from services.platform.web_auth import UserAuthSettings


class WebsocketSettings(UserAuthSettings):
    service_name: str = "websocket"
    # Server ping every N seconds; a client silent for idle_timeout_s (no pong, nothing) is closed.
    heartbeat_interval_s: float = Field(20.0, gt=0)
    idle_timeout_s: float = Field(60.0, gt=0)
    # A client that connects without ?token= must send {"type":"auth"} within this time.
    auth_timeout_s: float = Field(10.0, gt=0)
    # Recent updates kept per user for ?last_event_id= resume, and how many users are kept.
    resume_buffer_size: int = Field(200, ge=1, le=10_000)
    resume_max_users: int = Field(10_000, ge=1)
    # Updates queued for one slow client before it is told to resync.
    send_queue_size: int = Field(256, ge=1)
