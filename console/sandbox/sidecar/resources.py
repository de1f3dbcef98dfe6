"""Dapr resources the sidecar reads from YAML: Component, Subscription and Resiliency CRs.

daprd in self-hosted mode loads every file under --resources-path and keeps the documents whose
`scopes` list is empty or names its app-id; we do the same over the whole tree (kustomize/base
holds multi-document files and unrelated kinds, which are skipped). Kept small on purpose: the
console's typed manifest loaders may replace this module later.
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
