"""Typed access to the worker's state (its settings), for routes and event handlers alike."""

from __future__ import annotations

from services.platform.deps import state_provider
from services.worker.config import WorkerSettings

get_settings = state_provider("settings", WorkerSettings)
