"""Resources the sidecar reads from YAML: Dapr's Component, Subscription, Resiliency and Configuration
CRs, and the Kubernetes objects that decide what the app's ServiceAccount may read (rbac.py).

daprd loads the documents whose `scopes` list is empty or names its app-id; we do the same over
the whole tree (kustomize/base holds multi-document files and unrelated kinds, which are skipped).
Lenient like daprd: a broken document is logged and skipped. What daprd would refuse to start with
and the sandbox cannot serve (a declarative Subscription with CEL route rules) is collected in
`refusals`, for the command line to report. The supervisor's strict loader
(`console/sandbox/manifests.py`) reads only what it creates itself, the topics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    """A Dapr Component: `type` like pubsub.kafka, `metadata` flattened to name -> value."""

    name: str
    type: str
    version: str = "v1"
    metadata: dict[str, str] = field(default_factory=dict)
    ignore_errors: bool = False  # spec.ignoreErrors: daprd starts without a component that fails to load

    @property
    def kind(self) -> str:
        """The building block: pubsub, state, secretstores, bindings..."""
        return self.type.split(".", 1)[0]


@dataclass(frozen=True)
class RouteRule:
    """A `routes.rules` entry, as the supervisor's manifest loader reads it; the sidecar refuses them."""

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
    """A subscription with one route (routes.default, or v1alpha1 `route`): rules are not implemented."""

    name: str
    pubsubname: str
    topic: str
    default_route: str
    dead_letter_topic: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    declarative: bool = True
    bulk: BulkSubscribe = field(default_factory=BulkSubscribe)


@dataclass
class Resources:
    """Everything loaded for one app-id."""

    components: list[Component] = field(default_factory=list)  # in scope for the app-id
    declared_kinds: set[str] = field(default_factory=set)  # building blocks declared for any app
    subscriptions: list[Subscription] = field(default_factory=list)
    resiliency_specs: list[dict[str, Any]] = field(default_factory=list)
    configurations: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> spec
    kubernetes: list[dict[str, Any]] = field(default_factory=list)  # Deployments and RBAC objects
    refusals: list[str] = field(default_factory=list)  # what the sidecar will not start with


ROUTE_RULES_REFUSED = ("routes.rules (CEL route rules) are not implemented by the dev sidecar; use one "
                       "routes.default per subscription (see console/sandbox/sidecar/README.md)")
KUBERNETES_KINDS = {("apps/", "Deployment"), ("apps/", "StatefulSet"), ("rbac.authorization.k8s.io/", "Role"),
                    ("rbac.authorization.k8s.io/", "RoleBinding"), ("rbac.authorization.k8s.io/", "ClusterRole"),
                    ("rbac.authorization.k8s.io/", "ClusterRoleBinding")}


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


def _subscription(doc: dict[str, Any], refusals: list[str]) -> Subscription | None:
    spec = doc.get("spec") or {}
    routes = spec.get("routes") or {}
    default = routes.get("default") or spec.get("route") or ""
    name = str((doc.get("metadata") or {}).get("name", ""))
    if routes.get("rules"):
        refusals.append(f"subscription {name}: {ROUTE_RULES_REFUSED}")
        return None
    if not spec.get("pubsubname") or not spec.get("topic") or not default:
        log.warning("skipping Subscription without pubsubname/topic/route", extra={"subscription": name})
        return None
    return Subscription(
        name=name,
        pubsubname=str(spec["pubsubname"]),
        topic=str(spec["topic"]),
        default_route=str(default),
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
            if not isinstance(doc, dict):
                continue
            api, kind = str(doc.get("apiVersion", "")), doc.get("kind")
            if any(api.startswith(group) and kind == k for group, k in KUBERNETES_KINDS):
                res.kubernetes.append(doc)
                continue
            if not api.startswith("dapr.io/"):
                continue
            name = str((doc.get("metadata") or {}).get("name", ""))
            spec = doc.get("spec") or {}
            if kind == "Component":
                res.declared_kinds.add(str(spec.get("type", "")).split(".", 1)[0])
            if not _in_scope(doc, app_id):
                continue
            if kind == "Component":
                res.components.append(Component(
                    name=name, type=str(spec.get("type", "")), version=str(spec.get("version", "v1")),
                    metadata=_flatten_metadata(spec.get("metadata")),
                    ignore_errors=str(spec.get("ignoreErrors", "")).lower() == "true",
                ))
            elif kind == "Subscription":
                sub = _subscription(doc, res.refusals)
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
