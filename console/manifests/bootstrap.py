"""Replay the bootstrap statically: does every step find the namespaces, Secrets and CRDs it needs?

`kustomize/operators/install.sh <env>` with DRY_RUN=1 prints the commands it would run, in order. This module
reads them back, follows what each creates (namespaces from the applied manifests and Helm's
--create-namespace, Secrets, the CRDs each chart installs) and checks what each needs against what exists by
then: the Secrets a chart's values name, the CRDs its values make it use, the namespaces of created Secrets,
and finally everything the overlay refers to when it is applied. An empty cluster has only Kubernetes' own
namespaces, no Secrets and no CRDs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.manifests.budget import OPERATORS_DIR, Release, read_releases, release_values
from console.manifests.render import RenderError, render_dir

INSTALL_SCRIPT = OPERATORS_DIR / "install.sh"
EMPTY_CLUSTER_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
# What install.sh prod requires in its environment; DRY_RUN never prints their values.
PROD_INPUTS = ("OCI_S3_ACCESS_KEY_ID", "OCI_S3_SECRET_ACCESS_KEY", "OCIR_USERNAME", "OCIR_AUTH_TOKEN")

# The custom resource kinds each chart installs (group/Kind), from the charts' CRD templates at the pinned
# versions; `crds` is the values switch when the chart has one (absent means always installed).
CHART_CRDS: dict[str, tuple[str | None, frozenset[str]]] = {
    "kube-prometheus-stack": ("crds.enabled", frozenset({
        "monitoring.coreos.com/ServiceMonitor", "monitoring.coreos.com/PodMonitor", "monitoring.coreos.com/PrometheusRule",
        "monitoring.coreos.com/Prometheus", "monitoring.coreos.com/Alertmanager", "monitoring.coreos.com/Probe",
        "monitoring.coreos.com/AlertmanagerConfig", "monitoring.coreos.com/ScrapeConfig", "monitoring.coreos.com/ThanosRuler",
        "monitoring.coreos.com/PrometheusAgent"})),
    "cert-manager": ("crds.enabled", frozenset({
        "cert-manager.io/Certificate", "cert-manager.io/CertificateRequest", "cert-manager.io/Issuer",
        "cert-manager.io/ClusterIssuer", "acme.cert-manager.io/Order", "acme.cert-manager.io/Challenge"})),
    "nginx-ingress": (None, frozenset({
        "k8s.nginx.org/VirtualServer", "k8s.nginx.org/VirtualServerRoute", "k8s.nginx.org/Policy",
        "k8s.nginx.org/TransportServer", "k8s.nginx.org/GlobalConfiguration"})),
    "strimzi-kafka-operator": (None, frozenset({
        "kafka.strimzi.io/Kafka", "kafka.strimzi.io/KafkaNodePool", "kafka.strimzi.io/KafkaTopic",
        "kafka.strimzi.io/KafkaUser", "kafka.strimzi.io/KafkaConnect", "kafka.strimzi.io/KafkaConnector",
        "kafka.strimzi.io/KafkaRebalance", "kafka.strimzi.io/KafkaMirrorMaker2", "kafka.strimzi.io/KafkaBridge"})),
    "dapr": (None, frozenset({
        "dapr.io/Component", "dapr.io/Configuration", "dapr.io/Subscription", "dapr.io/Resiliency",
        "dapr.io/HTTPEndpoint"})),
    "keda": (None, frozenset({
        "keda.sh/ScaledObject", "keda.sh/ScaledJob", "keda.sh/TriggerAuthentication",
        "keda.sh/ClusterTriggerAuthentication"})),
    "cloudnative-pg": ("crds.create", frozenset({
        "postgresql.cnpg.io/Cluster", "postgresql.cnpg.io/Backup", "postgresql.cnpg.io/ScheduledBackup",
        "postgresql.cnpg.io/Pooler", "postgresql.cnpg.io/Database", "postgresql.cnpg.io/ImageCatalog",
        "postgresql.cnpg.io/ClusterImageCatalog", "postgresql.cnpg.io/Publication",
        "postgresql.cnpg.io/Subscription"})),
}


@dataclass(frozen=True)
class Step:
    """One command of the bootstrap, as install.sh printed it."""

    number: int
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"step {self.number} ({' '.join(self.argv[:4])})"


@dataclass
class ClusterState:
    namespaces: set[str] = field(default_factory=lambda: set(EMPTY_CLUSTER_NAMESPACES))
    secrets: set[tuple[str, str]] = field(default_factory=set)
    crds: set[str] = field(default_factory=set)
    helm_plugins: set[str] = field(default_factory=set)


class BootstrapError(Exception):
    """install.sh could not be run or printed something this replay does not understand."""


def dry_run(environment: str, *, script: Path = INSTALL_SCRIPT) -> list[Step]:
    """The commands `install.sh <environment>` would run on an empty cluster (secret values never printed)."""
    bash = shutil.which("bash") or "/bin/bash"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DRY_RUN": "1", **dict.fromkeys(PROD_INPUTS, "dry-run")}
    try:
        proc = subprocess.run([bash, str(script), environment], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BootstrapError(f"running {script} failed: {exc}") from exc
    if proc.returncode != 0:
        raise BootstrapError(f"{script} {environment} (DRY_RUN) failed: {proc.stderr.strip()}")
    return [Step(i + 1, tuple(shlex.split(line))) for i, line in enumerate(proc.stdout.splitlines()) if line.strip()]


def _option(argv: tuple[str, ...], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def values_secrets(values: dict[str, Any]) -> set[str]:
    """Secrets a chart's values name as inputs: existingSecret, secretRef and secretKeyRef."""
    names: set[str] = set()
    for node in _walk(values):
        if isinstance(node.get("existingSecret"), str) and node["existingSecret"]:
            names.add(node["existingSecret"])
        for key in ("secretRef", "secretKeyRef"):
            ref = node.get(key)
            if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                names.add(ref["name"])
    return names


def values_crds(values: dict[str, Any]) -> set[str]:
    """CRDs a chart's values switch on: ServiceMonitor / PodMonitor objects of its own."""
    kinds: set[str] = set()
    for node in _walk(values):
        for key, value in node.items():
            lowered = key.lower()
            if lowered in ("servicemonitor", "podmonitor") and isinstance(value, dict) and \
                    (value.get("enabled") is True or value.get("create") is True):
                kinds.add("monitoring.coreos.com/" + ("ServiceMonitor" if lowered == "servicemonitor" else "PodMonitor"))
            elif lowered == "podmonitorenabled" and value is True:
                kinds.add("monitoring.coreos.com/PodMonitor")
    return kinds


def _chart_installs(release: Release, values: dict[str, Any]) -> set[str]:
    switch, kinds = CHART_CRDS.get(release.name, (None, frozenset()))
    if switch is not None:
        node: Any = values
        for key in switch.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node is False:
            return set()
    return set(kinds)


def _custom_kind(obj: dict[str, Any]) -> str | None:
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    if "." not in group or group.endswith(".k8s.io"):
        return None
    return f"{group}/{obj['kind']}"


def overlay_secret_inputs(objs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Secrets the rendered objects read and do not create themselves (namespace, name)."""
    produced = {(o["metadata"].get("namespace"), o["spec"]["secretName"]) for o in objs if o.get("kind") == "Certificate"}
    needed: set[tuple[str, str]] = set()
    for obj in objs:
        ns, kind, spec = obj["metadata"].get("namespace"), obj.get("kind"), obj.get("spec") or {}
        if kind == "Component":
            needed |= {(ns, m["secretKeyRef"]["name"]) for m in spec.get("metadata") or [] if "secretKeyRef" in m}
        elif kind == "Configuration":
            for scope in (spec.get("secrets") or {}).get("scopes") or []:
                needed |= {(ns, name) for name in scope.get("allowedSecrets") or []}
        elif kind == "ServiceAccount":
            needed |= {(ns, ref["name"]) for ref in obj.get("imagePullSecrets") or []}
        elif kind == "Cluster" and str(obj.get("apiVersion", "")).startswith("postgresql.cnpg.io/"):
            initdb = (spec.get("bootstrap") or {}).get("initdb") or {}
            if initdb.get("secret"):
                needed.add((ns, initdb["secret"]["name"]))
            for role in (spec.get("managed") or {}).get("roles") or []:
                if role.get("passwordSecret"):
                    needed.add((ns, role["passwordSecret"]["name"]))
            creds = ((spec.get("backup") or {}).get("barmanObjectStore") or {}).get("s3Credentials") or {}
            needed |= {(ns, ref["name"]) for ref in creds.values() if isinstance(ref, dict) and "name" in ref}
        elif kind == "VirtualServer":
            needed.add((ns, str((spec.get("tls") or {}).get("secret") or "")))
    return {(ns, name) for ns, name in needed if name} - produced


@dataclass
class Replay:
    """The outcome of replaying the bootstrap and the overlay apply."""

    problems: list[str] = field(default_factory=list)
    state: ClusterState = field(default_factory=ClusterState)


def _apply_manifests(objs: list[dict[str, Any]], where: str, replay: Replay) -> None:
    """kubectl apply of rendered objects: namespaces of its own first, then every object's needs."""
    state = replay.state
    state.namespaces |= {o["metadata"]["name"] for o in objs if o.get("kind") == "Namespace"}
    for obj in objs:
        ns, kind = obj["metadata"].get("namespace"), _custom_kind(obj)
        ref = f"{obj['kind']} {ns or '-'}/{obj['metadata']['name']}"
        if ns and ns not in state.namespaces:
            replay.problems.append(f"{where}: {ref} is in namespace {ns}, which no earlier step creates")
        if kind and kind not in state.crds:
            replay.problems.append(f"{where}: {ref} needs the CRD {kind}, which no earlier step installs")
    for ns, name in sorted(overlay_secret_inputs(objs)):
        if (ns, name) not in state.secrets:
            replay.problems.append(f"{where}: needs Secret {ns}/{name}, which no earlier step creates")


def _helm(step: Step, environment: str, releases: dict[str, Release], replay: Replay, operators_dir: Path) -> None:
    state = replay.state
    name, namespace = step.argv[3], _option(step.argv, "--namespace") or "default"
    release = releases.get(name)
    if release is None:
        replay.problems.append(f"{step}: release {name} is not in versions.env")
        return
    if "--create-namespace" in step.argv:
        state.namespaces.add(namespace)
    elif namespace not in state.namespaces:
        replay.problems.append(f"{step}: namespace {namespace} does not exist yet")
    plugin = _option(step.argv, "--post-renderer")
    if plugin and plugin not in state.helm_plugins:
        replay.problems.append(f"{step}: post-renderer plugin {plugin} is not installed yet")
    values = release_values(name, environment, operators_dir)
    for secret in sorted(values_secrets(values)):
        if (namespace, secret) not in state.secrets:
            replay.problems.append(f"{step}: values name Secret {namespace}/{secret}, which no earlier step creates")
    for kind in sorted(values_crds(values) - state.crds):
        replay.problems.append(f"{step}: uses {kind}, whose CRD no earlier step installs")
    state.crds |= _chart_installs(release, values)


def replay_bootstrap(environment: str, steps: list[Step], overlay_objs: list[dict[str, Any]],
                     operators_dir: Path = OPERATORS_DIR) -> Replay:
    """Follow the bootstrap's steps, then the overlay apply, and collect every unmet need."""
    replay = Replay()
    state = replay.state
    releases = {r.name: r for r in read_releases(operators_dir)}
    for step in steps:
        argv = step.argv
        if argv[:3] == ("helm", "upgrade", "--install"):
            _helm(step, environment, releases, replay, operators_dir)
        elif argv[:3] == ("helm", "plugin", "install"):
            state.helm_plugins.add(Path(argv[3]).name)
        elif argv[:4] == ("kubectl", "create", "secret", "generic"):
            namespace = _option(argv, "--namespace") or "default"
            if namespace not in state.namespaces:
                replay.problems.append(f"{step}: Secret {argv[4]} goes to namespace {namespace}, which does not exist yet")
            state.secrets.add((namespace, argv[4]))
        elif argv[:2] == ("kubectl", "apply") and "-k" in argv:
            try:
                objs = render_dir(_option(argv, "-k") or "")
            except RenderError as exc:
                replay.problems.append(f"{step}: {exc}")
                continue
            _apply_manifests(objs, str(step), replay)
    _apply_manifests(overlay_objs, f"kubectl apply -k kustomize/overlays/{environment}", replay)
    return replay
