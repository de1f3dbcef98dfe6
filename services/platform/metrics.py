"""Prometheus metrics every service exposes at /metrics (FR-G09).

Defined once per process, labelled by service, so several apps in one test process do not
register the same series twice.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PUBLISHED = Counter("events_published_total", "Events published through Dapr", ["service", "topic"])
EVENTS_CONSUMED = Counter("events_consumed_total", "Events handled successfully", ["service", "topic"])
EVENTS_FAILED = Counter(
    "events_failed_total", "Events that failed to publish or to be handled", ["service", "topic", "stage"]
)
DAPR_CALLS = Histogram(
    "dapr_client_call_duration_seconds", "Calls to the Dapr sidecar", ["service", "operation", "outcome"]
)
OUTBOX_PENDING = Gauge("outbox_pending_events", "Events committed but not yet published", ["service"])
# An age, computed when scraped from the oldest pending event's commit time: it keeps growing while
# delivery is stalled even if nothing else updates it, and is 0 when the outbox is empty.
OUTBOX_OLDEST_AGE = Gauge("outbox_oldest_pending_age_seconds",
                          "Seconds since the oldest event still waiting in the outbox was committed", ["service"])
