"""Typed access to the worker's state (its settings), for routes and event handlers alike."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from services.platform.deps import app_state
from services.worker.config import WorkerSettings


def get_settings(connection: HTTPConnection) -> WorkerSettings:
    return app_state(connection, "settings", WorkerSettings)
