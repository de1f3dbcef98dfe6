"""Event rates per topic: what the services published, consumed and failed, and what daprd saw.

Two witnesses, on purpose. The services count what they did (`events_published_total`,
`events_consumed_total`, `events_failed_total` by topic: services/platform/metrics.py); daprd counts what it
delivered and with which outcome (`dapr_component_pubsub_ingress_count` by `process_status`). When the two
disagree (daprd retries that the app never logged: a crash, a timeout), daprd is right about delivery.
The sandbox's dev sidecar exports no metrics, so there the Dapr figures stay empty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Point = tuple[float, float]  # (unix seconds, events per second)


@dataclass(frozen=True)
class ServiceRate:
    """Events per second one service handled on one topic; `stage` says where a failure happened (parse,
    drop, retry, error in a consumer; publish in the backend's outbox relay)."""

    service: str
    per_s: float
    stage: str | None = None


@dataclass(frozen=True)
class DaprRate:
    """daprd's count for one app and topic: `direction` in (deliveries to the app, `status` success, retry or
    drop) or out (publishes to the broker, `status` true or false)."""

    app_id: str
    direction: str
    status: str
    per_s: float


@dataclass(frozen=True)
class TopicRates:
    topic: str
    published: tuple[ServiceRate, ...] = ()
    consumed: tuple[ServiceRate, ...] = ()
    failed: tuple[ServiceRate, ...] = ()
    dapr: tuple[DaprRate, ...] = ()

    @property
    def published_per_s(self) -> float:
        return sum((r.per_s for r in self.published), 0.0)

    @property
    def consumed_per_s(self) -> float:
        return sum((r.per_s for r in self.consumed), 0.0)

    @property
    def failed_per_s(self) -> float:
        return sum((r.per_s for r in self.failed), 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "published_per_s": self.published_per_s, "consumed_per_s": self.consumed_per_s,
            "failed_per_s": self.failed_per_s,
            "published": [_rate(r) for r in self.published], "consumed": [_rate(r) for r in self.consumed],
            "failed": [_rate(r) for r in self.failed],
            "dapr": [{"app_id": r.app_id, "direction": r.direction, "status": r.status, "per_s": r.per_s}
                     for r in self.dapr],
        }


@dataclass(frozen=True)
class TopicHistory:
    """Rates over a time range, summed over services, on a regular grid: sparkline material."""

    topic: str
    published: tuple[Point, ...] = ()
    consumed: tuple[Point, ...] = ()
    failed: tuple[Point, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "published": [list(p) for p in self.published],
                "consumed": [list(p) for p in self.consumed], "failed": [list(p) for p in self.failed]}


@dataclass(frozen=True)
class EventsReport:
    """What `events` shows: the rates now, their history, and the backend's unpublished outbox rows."""

    window: str
    topics: tuple[TopicRates, ...]
    history: dict[str, TopicHistory] = field(default_factory=dict)
    outbox_pending: dict[str, float] = field(default_factory=dict)  # service -> events not yet published

    @property
    def failing(self) -> tuple[TopicRates, ...]:
        return tuple(t for t in self.topics if t.failed_per_s > 0)


def on_grid(points: Iterable[Point], start: float, end: float, step: float) -> tuple[Point, ...]:
    """`points` on every step from `start` to `end`; a missing step is 0 events/s (no series yet means no
    events), so sparklines of different topics line up and a quiet period shows as quiet."""
    known = {round(ts / step): value for ts, value in points if math.isfinite(value)}
    count = int((end - start) // step) + 1
    grid = [start + i * step for i in range(count)]
    return tuple((ts, known.get(round(ts / step), 0.0)) for ts in grid)


KINDS = ("published", "consumed", "failed")


class RateHistory:
    """Rates per topic over the last `range_s`, for sparklines that move with every refresh.

    Seeded once from Prometheus's own history (one range query: the trend is there from the first screen),
    then fed one sample per refresh (instant queries, much cheaper than a range query every two seconds).
    Both kinds of point land on the same grid of whole `step`s (a sample belongs to the step at or after
    it, where Prometheus's range query would have evaluated it), so the sparkline neither jitters nor mixes
    resolutions; the newest sample of a step wins.
    """

    def __init__(self, range_s: float = 900.0, points: int = 60) -> None:
        if range_s <= 0 or points < 2:
            raise ValueError("a rate history needs a positive range and at least 2 points")
        self.step = max(1, round(range_s / points))
        self.points = points
        self.seeded = False
        self._values: dict[str, dict[str, dict[int, float]]] = {}  # topic -> kind -> step index -> per second

    def seed(self, history: Mapping[str, TopicHistory]) -> None:
        for topic, h in history.items():
            for kind in KINDS:
                for ts, value in getattr(h, kind):
                    self._put(topic, kind, ts, value)
        self.seeded = True

    def add(self, at: float, topics: Iterable[TopicRates]) -> None:
        for t in topics:
            for kind, value in zip(KINDS, (t.published_per_s, t.consumed_per_s, t.failed_per_s), strict=True):
                self._put(t.topic, kind, at, value)
        oldest = math.ceil(at / self.step) - self.points
        for kinds in self._values.values():
            for values in kinds.values():
                for index in [i for i in values if i <= oldest]:
                    del values[index]

    def series(self, now: float) -> dict[str, TopicHistory]:
        """Every topic's rates on the `points` steps ending at the step at or after `now`."""
        end = math.ceil(now / self.step) * self.step
        start = end - (self.points - 1) * self.step

        def grid(values: Mapping[int, float]) -> tuple[Point, ...]:
            return on_grid(((i * self.step, v) for i, v in values.items()), start, end, self.step)

        return {topic: TopicHistory(topic, *(grid(kinds.get(kind, {})) for kind in KINDS))
                for topic, kinds in sorted(self._values.items())}

    def _put(self, topic: str, kind: str, at: float, value: float) -> None:
        if math.isfinite(value):
            self._values.setdefault(topic, {}).setdefault(kind, {})[math.ceil(at / self.step)] = value


def _rate(rate: ServiceRate) -> dict[str, Any]:
    return {"service": rate.service, "stage": rate.stage, "per_s": rate.per_s}
