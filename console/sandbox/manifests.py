"""Read the wiring the cluster uses (KafkaTopic, Subscription, Resiliency, Component) from kustomize/base.

The sandbox must behave like the cluster, so it reads the same YAML the cluster applies instead of
keeping a second copy of topic names or routes. The loader scans every ``*.yaml``/``*.yml`` file
under a directory (multi-document files allowed), keeps the four kinds it understands and ignores
everything else (Deployments, kustomization.yaml, patches). Each kind becomes a small frozen
dataclass holding only what a local runtime needs; the raw document stays out of the API so callers
do not grow a dependency on CRD layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The C loader when PyYAML was built with libyaml (several times faster on ~100 files); same safety.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DEFAULT_PARTITIONS = 1  # Strimzi falls back to the broker's num.partitions, which is 1 by default.


class ManifestError(ValueError):
    """A manifest the sandbox needs is unreadable or incomplete; the message names the file."""


@dataclass(frozen=True)
class KafkaTopic:
    """A Strimzi KafkaTopic: the broker-side name is spec.topicName, else metadata.name."""

    name: str
    partitions: int
    replicas: int
    configs: Mapping[str, str]
    cluster: str | None
    source: Path


@dataclass(frozen=True)
class RouteRule:
    """One `routes.rules` entry of a v2alpha1 Subscription: a CEL match and the path it selects."""

    match: str
    path: str


@dataclass(frozen=True)
class Subscription:
    """A declarative Dapr Subscription (v2alpha1 `routes`, or v1alpha1 `route`)."""

    name: str
    pubsub: str
    topic: str
    default_route: str
    rules: tuple[RouteRule, ...]
    dead_letter_topic: str | None
    scopes: tuple[str, ...]
    metadata: Mapping[str, str]
    source: Path

    def applies_to(self, app_id: str) -> bool:
        """Dapr semantics: no scopes means every app subscribes."""
        return not self.scopes or app_id in self.scopes


@dataclass(frozen=True)
class SecretRef:
    """A Component metadata value read from a secret store rather than written inline."""

    name: str
    key: str


@dataclass(frozen=True)
class Component:
    """A Dapr Component (pubsub, state store, secret store...) with its metadata flattened."""

    name: str
    type: str
    version: str
    metadata: Mapping[str, str | SecretRef]
    scopes: tuple[str, ...]
    source: Path

    def value(self, key: str, default: str | None = None) -> str | None:
        """An inline metadata value; secret references are not resolved here."""
        item = self.metadata.get(key, default)
        return item if isinstance(item, str) or item is None else default


@dataclass(frozen=True)
class RetryPolicy:
    """A Resiliency retry policy; durations stay strings (see `parse_duration`)."""

    policy: str = "constant"
    duration: str | None = None
    max_interval: str | None = None
    max_retries: int | None = None  # -1 means forever in Dapr


@dataclass(frozen=True)
class CircuitBreaker:
    """A Resiliency circuit breaker: `trip` is a CEL expression over `consecutiveFailures`."""

    max_requests: int = 1
    interval: str | None = None
    timeout: str | None = None
    trip: str | None = None


@dataclass(frozen=True)
class PolicyRefs:
    """Which named policies a target (an app, or a component's inbound/outbound side) uses."""

    timeout: str | None = None
    retry: str | None = None
    circuit_breaker: str | None = None


@dataclass(frozen=True)
class Resiliency:
    """A Dapr Resiliency: named policies plus the targets that reference them."""

    name: str
    timeouts: Mapping[str, str]
    retries: Mapping[str, RetryPolicy]
    circuit_breakers: Mapping[str, CircuitBreaker]
    apps: Mapping[str, PolicyRefs]
    components_inbound: Mapping[str, PolicyRefs]
    components_outbound: Mapping[str, PolicyRefs]
    scopes: tuple[str, ...]
    source: Path


@dataclass(frozen=True)
class Manifests:
    """Everything the sandbox reads from one directory tree."""

    topics: tuple[KafkaTopic, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    components: tuple[Component, ...] = ()
    resiliencies: tuple[Resiliency, ...] = ()
    files: tuple[Path, ...] = field(default=(), repr=False)

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    def components_of_type(self, prefix: str) -> tuple[Component, ...]:
        """E.g. ``components_of_type("pubsub.")``."""
        return tuple(c for c in self.components if c.type.startswith(prefix))

    def subscriptions_for(self, app_id: str) -> tuple[Subscription, ...]:
        return tuple(s for s in self.subscriptions if s.applies_to(app_id))


def load_manifests(root: Path) -> Manifests:
    """Load every supported document under `root` (a directory, or one file)."""
    if not root.exists():
        raise ManifestError(f"manifest directory {root} does not exist")
    files = sorted(p for p in (root.rglob("*") if root.is_dir() else [root]) if _is_yaml(p))
    topics: list[KafkaTopic] = []
    subscriptions: list[Subscription] = []
    components: list[Component] = []
    resiliencies: list[Resiliency] = []
    for path in files:
        for doc in _documents(path):
            kind, api = doc.get("kind"), str(doc.get("apiVersion", ""))
            if kind == "KafkaTopic" and api.startswith("kafka.strimzi.io/"):
                topics.append(_topic(doc, path))
            elif kind == "Subscription" and api.startswith("dapr.io/"):
                subscriptions.append(_subscription(doc, path))
            elif kind == "Component" and api.startswith("dapr.io/"):
                components.append(_component(doc, path))
            elif kind == "Resiliency" and api.startswith("dapr.io/"):
                resiliencies.append(_resiliency(doc, path))
    _check_unique("KafkaTopic", [(t.name, t.source) for t in topics])
    return Manifests(tuple(topics), tuple(subscriptions), tuple(components), tuple(resiliencies), tuple(files))


def topics_to_create(manifests: Manifests, dead_letter_partitions: int = 1) -> tuple[KafkaTopic, ...]:
    """The declared topics plus every Subscription's dead-letter topic not declared as a KafkaTopic.

    In the cluster Dapr would auto-create a missing dead-letter topic; the sandbox creates it up
    front so the broker's auto-creation default (4 partitions on tansu) never decides its shape.
    """
    declared = {t.name for t in manifests.topics}
    extra: dict[str, KafkaTopic] = {}
    for sub in manifests.subscriptions:
        dlq = sub.dead_letter_topic
        if dlq and dlq not in declared and dlq not in extra:
            extra[dlq] = KafkaTopic(dlq, dead_letter_partitions, 1, {}, None, sub.source)
    return manifests.topics + tuple(extra.values())


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration ("5s", "1m30s", "250ms"), as Dapr's Resiliency writes them."""
    text = text.strip()
    if text in ("0", ""):
        return 0.0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ManifestError(f"not a duration: {text!r}")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


# --- parsing helpers -------------------------------------------------------------------------------


def _is_yaml(path: Path) -> bool:
    return path.is_file() and path.suffix in (".yaml", ".yml")


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    try:
        docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    for doc in docs:
        if isinstance(doc, dict):
            yield doc


def _meta_name(doc: Mapping[str, Any], path: Path) -> str:
    name = (doc.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{path}: a {doc.get('kind')} has no metadata.name")
    return name


def _spec(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = doc.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _required(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    value = mapping.get(key)
    if value in (None, ""):
        raise ManifestError(f"{where}: missing {key}")
    return value


def _int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{where}: expected an integer, got {value!r}") from exc


def _strings(values: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(str(v) for v in values or ())


def _topic(doc: Mapping[str, Any], path: Path) -> KafkaTopic:
    meta_name = _meta_name(doc, path)
    where = f"{path}: KafkaTopic {meta_name}"
    spec = _spec(doc)
    configs = spec.get("config") or {}
    if not isinstance(configs, Mapping):
        raise ManifestError(f"{where}: spec.config must be a mapping")
    labels = (doc.get("metadata") or {}).get("labels") or {}
    return KafkaTopic(
        name=str(spec.get("topicName") or meta_name),
        partitions=_int(spec.get("partitions", DEFAULT_PARTITIONS), f"{where} spec.partitions"),
        replicas=_int(spec.get("replicas", 1), f"{where} spec.replicas"),
        configs={str(k): _config_value(v) for k, v in configs.items()},
        cluster=labels.get("strimzi.io/cluster"),
        source=path,
    )


def _config_value(value: Any) -> str:
    """Kafka wants strings; YAML gives booleans and numbers (``true`` must become ``"true"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _subscription(doc: Mapping[str, Any], path: Path) -> Subscription:
    name = _meta_name(doc, path)
    where = f"{path}: Subscription {name}"
    spec = _spec(doc)
    routes = spec.get("routes")
    if isinstance(routes, Mapping):  # v2alpha1
        default = str(routes.get("default") or "")
        rules = tuple(
            RouteRule(str(_required(r, "match", where)), str(_required(r, "path", where)))
            for r in routes.get("rules") or ()
        )
    else:  # v1alpha1
        default, rules = str(spec.get("route") or ""), ()
    if not default and not rules:
        raise ManifestError(f"{where}: no route (routes.default, routes.rules or route)")
    meta = spec.get("metadata") or {}
    return Subscription(
        name=name,
        pubsub=str(_required(spec, "pubsubname", where)),
        topic=str(_required(spec, "topic", where)),
        default_route=default,
        rules=rules,
        dead_letter_topic=str(spec["deadLetterTopic"]) if spec.get("deadLetterTopic") else None,
        scopes=_strings(doc.get("scopes")),
        metadata={str(k): str(v) for k, v in meta.items()},
        source=path,
    )


def _component(doc: Mapping[str, Any], path: Path) -> Component:
    name = _meta_name(doc, path)
    where = f"{path}: Component {name}"
    spec = _spec(doc)
    metadata: dict[str, str | SecretRef] = {}
    for item in spec.get("metadata") or ():
        key = str(_required(item, "name", where))
        if "secretKeyRef" in item:
            ref = item["secretKeyRef"] or {}
            metadata[key] = SecretRef(str(_required(ref, "name", f"{where} {key}")), str(ref.get("key") or key))
        else:
            metadata[key] = _config_value(item.get("value", ""))
    return Component(
        name=name,
        type=str(_required(spec, "type", where)),
        version=str(spec.get("version") or "v1"),
        metadata=metadata,
        scopes=_strings(doc.get("scopes")),
        source=path,
    )


def _resiliency(doc: Mapping[str, Any], path: Path) -> Resiliency:
    name = _meta_name(doc, path)
    spec = _spec(doc)
    policies = spec.get("policies") or {}
    targets = spec.get("targets") or {}
    retries = {
        str(k): RetryPolicy(
            policy=str(v.get("policy", "constant")),
            duration=_opt_str(v.get("duration")),
            max_interval=_opt_str(v.get("maxInterval")),
            max_retries=None if v.get("maxRetries") is None else int(v["maxRetries"]),
        )
        for k, v in (policies.get("retries") or {}).items()
    }
    breakers = {
        str(k): CircuitBreaker(
            max_requests=int(v.get("maxRequests", 1)),
            interval=_opt_str(v.get("interval")),
            timeout=_opt_str(v.get("timeout")),
            trip=_opt_str(v.get("trip")),
        )
        for k, v in (policies.get("circuitBreakers") or {}).items()
    }
    components = targets.get("components") or {}
    return Resiliency(
        name=name,
        timeouts={str(k): str(v) for k, v in (policies.get("timeouts") or {}).items()},
        retries=retries,
        circuit_breakers=breakers,
        apps={str(k): _refs(v) for k, v in (targets.get("apps") or {}).items()},
        components_inbound={str(k): _refs(v.get("inbound")) for k, v in components.items() if v.get("inbound")},
        components_outbound={
            str(k): _refs(v.get("outbound")) for k, v in components.items() if v.get("outbound")
        },
        scopes=_strings(doc.get("scopes")),
        source=path,
    )


def _refs(value: Mapping[str, Any] | None) -> PolicyRefs:
    value = value or {}
    return PolicyRefs(
        timeout=_opt_str(value.get("timeout")),
        retry=_opt_str(value.get("retry")),
        circuit_breaker=_opt_str(value.get("circuitBreaker")),
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _check_unique(kind: str, items: list[tuple[str, Path]]) -> None:
    seen: dict[str, Path] = {}
    for name, path in items:
        if name in seen:
            raise ManifestError(f"{kind} {name!r} is declared twice: {seen[name]} and {path}")
        seen[name] = path
