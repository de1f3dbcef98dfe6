"""Read the topics the cluster declares (KafkaTopic, and Subscriptions' dead-letter topics) from kustomize/base.

The sandbox must behave like the cluster, so it creates the topics the cluster's YAML declares instead
of keeping a second list. The loader scans every ``*.yaml``/``*.yml`` file under a directory
(multi-document files allowed), keeps the two kinds it needs and ignores everything else. It is
strict: a broken manifest stops `sandbox up` with the file's name, since the cluster would reject
it too. The dev sidecars read the Dapr resources themselves (Components, Subscriptions, Resiliency:
`sidecar/resources.py`), leniently, as daprd does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from console.sandbox.sidecar.resources import RouteRule

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


@dataclass(frozen=True)
class Manifests:
    """Everything the sandbox reads from one directory tree."""

    topics: tuple[KafkaTopic, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    files: tuple[Path, ...] = field(default=(), repr=False)


def load_manifests(root: Path) -> Manifests:
    """Load every supported document under `root` (a directory, or one file)."""
    if not root.exists():
        raise ManifestError(f"manifest directory {root} does not exist")
    files = sorted(p for p in (root.rglob("*") if root.is_dir() else [root]) if _is_yaml(p))
    topics: list[KafkaTopic] = []
    subscriptions: list[Subscription] = []
    for path in files:
        for doc in _documents(path):
            kind, api = doc.get("kind"), str(doc.get("apiVersion", ""))
            if kind == "KafkaTopic" and api.startswith("kafka.strimzi.io/"):
                topics.append(_topic(doc, path))
            elif kind == "Subscription" and api.startswith("dapr.io/"):
                subscriptions.append(_subscription(doc, path))
    _check_unique("KafkaTopic", [(t.name, t.source) for t in topics])
    return Manifests(tuple(topics), tuple(subscriptions), tuple(files))


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


def _check_unique(kind: str, items: list[tuple[str, Path]]) -> None:
    seen: dict[str, Path] = {}
    for name, path in items:
        if name in seen:
            raise ManifestError(f"{kind} {name!r} is declared twice: {seen[name]} and {path}")
        seen[name] = path
