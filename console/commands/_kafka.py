"""What the Kafka commands (`lag`, `dlq`) share: their sources for a target, and a duration argument.

The sources are built by console.live.connect, as the hub builds them: one construction per target.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from console.cli import CliError
from console.live import connect
from console.model.wiring import Wiring
from console.sources.health import SourceError
from console.sources.kafka import KafkaSource
from console.target import Target

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@contextmanager
def source_errors() -> Iterator[None]:
    """A source that is down is one line naming it and its address (exit 2), never a traceback."""
    try:
        yield
    except SourceError as exc:
        raise CliError(str(exc)) from exc


def kafka_for(target: Target) -> KafkaSource:
    with source_errors():
        return connect.open_kafka(target)


def wiring_for(target: Target) -> Wiring:
    """Subscriptions and ScaledObjects: the cluster's own (its API server), or the rendered prod overlay for the
    sandbox (console.live.connect says why)."""
    with source_errors():
        return connect.read_wiring(target)


def duration(text: str) -> float:
    """`90s`, `15m`, `2h`, `3d` or plain seconds, as an argparse type."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 15m, 2h, 3d)")
    return float(match.group(1)) * _SECONDS[match.group(2) or "s"]
