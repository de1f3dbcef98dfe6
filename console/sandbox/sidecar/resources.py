"""Dapr resources the sidecar reads from YAML: Component, Subscription and Resiliency CRs.

daprd in self-hosted mode loads every file under --resources-path and keeps the documents whose
`scopes` list is empty or names its app-id; we do the same over the whole tree (kustomize/base
holds multi-document files and unrelated kinds, which are skipped). Lenient like daprd: a broken
document is logged and skipped. The supervisor's strict loader (`console/sandbox/manifests.py`)
reads only what it creates itself, the topics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from console.sandbox.sidecar.routing import matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    """A Dapr Component: `type` like pubsub.kafka, `metadata` flattened to name -> value."""

    name: str
    type: str
    version: str = "v1"
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The building block: pubsub, state, secretstores, bindings..."""
        return self.type.split(".", 1)[0]


@dataclass(frozen=True)
class RouteRule:
    match: str
    path: str


# pubsub.kafka's own defaults (components-contrib common/component/kafka/utils.go
# DefaultMaxBulkSubCount / DefaultMaxBulkSubAwaitDurationMs). daprd's generic fallback for components
# without native bulk support (pkg/runtime/pubsub/default_bulksub.go) is 100 / 1000 ms, but Kafka
# implements BulkSubscriber itself, so these are the ones a daprd+Kafka app gets.
DEFAULT_BULK_MAX_MESSAGES = 80
DEFAULT_BULK_MAX_AWAIT_MS = 10_000


@dataclass(frozen=True)
class BulkSubscribe:
    """`spec.bulkSubscribe` (v2alpha1 CRs and /dapr/subscribe items alike).

    Zero or absent limits mean "the component's default", as GetIntValOrDefault does upstream.
    """

    enabled: bool = False
    max_messages: int = DEFAULT_BULK_MAX_MESSAGES
    max_await_ms: int = DEFAULT_BULK_MAX_AWAIT_MS

    @classmethod
    def parse(cls, spec: Any) -> BulkSubscribe:
        """Lenient like daprd's JSON decode: a missing or malformed block disables bulk delivery."""
        if not isinstance(spec, dict):
            return cls()

        def positive(key: str, default: int) -> int:
            try:
                value = int(spec.get(key) or 0)
            except (TypeError, ValueError):
                log.warning("invalid bulkSubscribe value ignored", extra={"field": key, "value": spec.get(key)})
                return default
            return value if value > 0 else default

        enabled = spec.get("enabled")
        return cls(enabled=enabled is True or str(enabled).lower() == "true",
                   max_messages=positive("maxMessagesCount", DEFAULT_BULK_MAX_MESSAGES),
                   max_await_ms=positive("maxAwaitDurationMs", DEFAULT_BULK_MAX_AWAIT_MS))


@dataclass(frozen=True)
class Subscription:
    """A declarative subscription (dapr.io/v2alpha1 routes, or v1alpha1 `route`)."""

    name: str
    pubsubname: str
    topic: str
    default_route: str
    rules: tuple[RouteRule, ...] = ()
    dead_letter_topic: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    declarative: bool = True
    bulk: BulkSubscribe = field(default_factory=BulkSubscribe)

    def route_for(self, event: dict[str, Any]) -> str | None:
        """The path for an event: first matching rule, else the default (None: no route, skip)."""
        for rule in self.rules:
            if matches(rule.match, event):
                return rule.path
        return self.default_route or None


@dataclass
class Resources:
    """Everything loaded for one app-id."""

    components: list[Component] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    resiliency_specs: list[dict[str, Any]] = field(default_factory=list)
    configurations: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> spec


def _in_scope(doc: dict[str, Any], app_id: str) -> bool:
    scopes = doc.get("scopes") or []
    return not scopes or app_id in scopes


def _flatten_metadata(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        if isinstance(item, dict) and "name" in item and "value" in item:
            value = item["value"]
            out[str(item["name"])] = value if isinstance(value, str) else yaml.safe_dump(value).strip()
    return out


def _subscription(doc: dict[str, Any]) -> Subscription | None:
    spec = doc.get("spec") or {}
    routes = spec.get("routes") or {}
    default = routes.get("default") or spec.get("route") or ""
    rules = tuple(RouteRule(str(r.get("match", "")), str(r.get("path", ""))) for r in routes.get("rules") or [])
    if not spec.get("pubsubname") or not spec.get("topic") or not (default or rules):
        log.warning("skipping Subscription without pubsubname/topic/route",
                    extra={"subscription": doc.get("metadata", {}).get("name")})
        return None
    return Subscription(
        name=str(doc.get("metadata", {}).get("name", "")),
        pubsubname=str(spec["pubsubname"]),
        topic=str(spec["topic"]),
        default_route=str(default),
        rules=rules,
        dead_letter_topic=str(spec.get("deadLetterTopic") or ""),
        metadata={str(k): str(v) for k, v in (spec.get("metadata") or {}).items()},
        bulk=BulkSubscribe.parse(spec.get("bulkSubscribe")),
    )


def load(resources_path: Path, app_id: str) -> Resources:
    """Scan the tree for Dapr CRs in scope for `app_id`; unreadable documents are logged and skipped."""
    res = Resources()
    if not resources_path.exists():
        log.warning("resources path does not exist", extra={"path": str(resources_path)})
        return res
    files = [resources_path] if resources_path.is_file() else sorted(
        p for p in resources_path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
    )
    for path in files:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            log.warning("skipping unreadable YAML file", extra={"path": str(path), "error": str(exc)})
            continue
        for doc in docs:
            if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith("dapr.io/"):
                continue
            if not _in_scope(doc, app_id):
                continue
            kind = doc.get("kind")
            name = str((doc.get("metadata") or {}).get("name", ""))
            spec = doc.get("spec") or {}
            if kind == "Component":
                res.components.append(Component(
                    name=name, type=str(spec.get("type", "")), version=str(spec.get("version", "v1")),
                    metadata=_flatten_metadata(spec.get("metadata")),
                ))
            elif kind == "Subscription":
                sub = _subscription(doc)
                if sub is not None:
                    res.subscriptions.append(sub)
            elif kind == "Resiliency":
                res.resiliency_specs.append(spec)
            elif kind == "Configuration":
                res.configurations[name] = spec
    log.info("resources loaded", extra={
        "path": str(resources_path), "components": [c.name for c in res.components],
        "subscriptions": [s.name for s in res.subscriptions], "resiliencies": len(res.resiliency_specs),
        "configurations": sorted(res.configurations),
    })
    return res
