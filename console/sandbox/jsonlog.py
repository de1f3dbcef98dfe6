"""One-line JSON log records for the sandbox supervisor's own log (`<dir>/logs/supervisor.log`).

Fields passed with ``extra=`` become top-level keys, so `jq` can filter on process names or pids.
The formatter is the services' own (`ts`, `level`, `logger`, `msg`, then the extra fields).
"""

from __future__ import annotations

import logging

from services.platform.logs import JsonLineFormatter


def configure(level: str = "INFO") -> None:
    """Route the root logger to stderr as JSON (the supervisor's stderr is its log file)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
