"""Is the sandbox delivering? The outbox backlog and its age, consumer lag per group, and a warning when
events stop flowing while the API accepts writes.

Two readings, each from its owner, never from a service's internals:
- the backend's `/metrics`: `outbox_pending_events` and `outbox_oldest_pending_age_seconds` (events the
  API committed that the relay has not yet published, and how long the oldest has waited);
- Kafka, through the console's own source and lag engine (`console.sources.kafka`, `console.model.lag`):
  per consumer group (the app-ids the Subscriptions in kustomize/base name), messages not yet consumed
  and the age of the oldest of them.

An event waiting longer than `stall_after_s` is a stall: in the outbox, publishing is stuck (sidecar or
broker); in a group, that consumer is. Writes the API accepted are what makes either grow, so the
warning is exactly "the API took writes that are not being delivered". A source that does not answer
is reported as such, never as "no backlog".
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from console.model.lag import LagHistory, evaluate
from console.sandbox.layout import SandboxLayout
from console.sandbox.manifests import ManifestError, load_manifests
from console.sandbox.plan import Plan
from console.sources.health import SourceError
from console.sources.kafka import KafkaSource

STALL_AFTER_S = 30.0
TIMEOUT_S = 3.0
OUTBOX_SERVICE = "backend"


@dataclass
class GroupDelivery:
    group: str
    lag: int
    oldest_s: float | None  # age of the oldest unconsumed record
    partitions: int


@dataclass
class DeliveryReport:
    outbox_pending: int | None = None
    outbox_oldest_s: float | None = None
    groups: list[GroupDelivery] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # sources that did not answer, and why

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def report(layout: SandboxLayout, state: dict[str, Any], stall_after_s: float = STALL_AFTER_S,
           timeout_s: float = TIMEOUT_S) -> DeliveryReport:
    """Read both sources of a running sandbox (`state` as `control.status` returns it) and judge them."""
    result = DeliveryReport()
    try:
        plan = Plan.load(layout.plan)
    except (OSError, ValueError, KeyError) as exc:
        result.unreadable.append(f"plan: {exc}")
        return result
    _read_outbox(plan, state, result, timeout_s)
    _read_lag(plan, state, result, timeout_s)
    if result.outbox_pending and (result.outbox_oldest_s or 0) > stall_after_s:
        result.warnings.append(
            f"delivery stalled: {result.outbox_pending} event(s) the API committed wait in the outbox, the oldest "
            f"for {result.outbox_oldest_s:.0f}s (publishing is stuck: `sandbox logs backend`, the broker)")
    for group in result.groups:
        if group.lag and (group.oldest_s or 0) > stall_after_s:
            result.warnings.append(
                f"consumer {group.group} is {group.lag} event(s) behind, the oldest waiting {group.oldest_s:.0f}s "
                f"(`sandbox logs {group.group}`)")
    return result


def _read_outbox(plan: Plan, state: dict[str, Any], result: DeliveryReport, timeout_s: float) -> None:
    url = next((p.metrics_url for p in plan.processes if p.name == OUTBOX_SERVICE and p.metrics_url), None)
    if url is None or not (state.get("processes") or {}).get(OUTBOX_SERVICE, {}).get("running"):
        result.unreadable.append(f"{OUTBOX_SERVICE} metrics: {OUTBOX_SERVICE} is not running")
        return
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (the plan's loopback URL)
            text = resp.read().decode()
    except (OSError, urllib.error.URLError) as exc:
        result.unreadable.append(f"{OUTBOX_SERVICE} metrics ({url}): {exc}")
        return
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("service") != OUTBOX_SERVICE:
                continue
            if sample.name == "outbox_pending_events":
                result.outbox_pending = int(sample.value)
            elif sample.name == "outbox_oldest_pending_age_seconds":
                result.outbox_oldest_s = round(sample.value, 1)


def _read_lag(plan: Plan, state: dict[str, Any], result: DeliveryReport, timeout_s: float) -> None:
    bootstrap = (state.get("broker") or {}).get("bootstrap")
    running = {p.get("app_id") for p in (state.get("processes") or {}).values() if p.get("kind") == "service"}
    try:
        manifests = load_manifests(Path(plan.manifests_path)) if plan.manifests_path else None
    except (ManifestError, OSError) as exc:
        result.unreadable.append(f"manifests: {exc}")
        return
    topics_of: dict[str, set[str]] = {}
    for sub in manifests.subscriptions if manifests else ():
        for app in sub.scopes:
            if app in running:
                topics_of.setdefault(app, set()).add(sub.topic)
    if not bootstrap or not topics_of:
        return
    history = LagHistory()
    try:
        with KafkaSource(bootstrap, timeout_s=timeout_s) as kafka:
            history.add(kafka.lag_snapshot(sorted(topics_of), topics_of=topics_of))
    except SourceError as exc:
        result.unreadable.append(f"kafka: {exc}")
        return
    for group in sorted(evaluate(history), key=lambda g: g.group):
        oldest = group.max_time_lag_s
        result.groups.append(GroupDelivery(group.group, group.total_lag, round(oldest, 1) if oldest is not None
                                           else None, len(group.partitions)))
