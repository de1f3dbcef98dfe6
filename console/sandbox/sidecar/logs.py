"""JSON-lines logging to stdout, the shape daprd uses with --log-as-json (time, level, msg, scope, app_id).

The supervisor captures stdout to <sandbox>/logs/<app-id>-dapr.log, and the console greps those
files, so one JSON object per line with stable keys matters more than pretty text.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from services.platform.logs import JsonLineFormatter, utc_timestamp


class JsonFormatter(JsonLineFormatter):
    """The services' formatter with daprd's leading fields; an exception's last line as `error`."""

    exception_field = "error"

    def __init__(self, app_id: str) -> None:
        super().__init__()
        self.app_id = app_id

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return {"time": utc_timestamp(record), "level": record.levelname.lower(), "msg": record.getMessage(),
                "scope": record.name, "app_id": self.app_id, "type": "log"}

    def exception(self, record: logging.LogRecord) -> str:
        return super().exception(record).splitlines()[-1]


def configure(app_id: str, level: str = "info") -> None:
    """Route every logger (ours, librdkafka's) to stdout as JSON; librdkafka's chatter stays out."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(app_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    name = level.upper() if level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"
    root.setLevel(name)
    # librdkafka logs every refused connection and reconnect as an error; the sidecar logs what matters
    logging.getLogger("librdkafka").setLevel(logging.CRITICAL if level.lower() != "debug" else logging.INFO)
    threading.excepthook = _log_thread_crash  # a traceback on stderr would break the JSON lines
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    thread = args.thread.name if args.thread else "?"
    logging.getLogger("console.sandbox.sidecar").error(
        "background thread failed", extra={"thread_name": thread, "error": f"{args.exc_type.__name__}: {args.exc_value}"})
