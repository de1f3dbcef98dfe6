"""Checks to pass before anything is applied to a cluster: what offline validation alone does not see.

Every manifest can validate against its schema and still fail on the cluster: a placeholder host that
Let's Encrypt will never validate, a registry path nobody pushed to, policies that allow the API server on a
subnet the cluster does not have, a node pool the budget does not fit, a Secret the bootstrap never creates.
Each check here returns its findings as plain sentences; an empty list means it passed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from console.manifests import access, bootstrap
from console.manifests import budget as budget_model
from console.manifests.cluster_spec import ClusterSpec
from console.manifests.quantity import cpu_millis, mem_mib, storage_gib
from console.manifests.render import KUSTOMIZE_DIR, ObjectRef, overlay_dir, render_dir, select

CALICO_CNI = "FLANNEL_OVERLAY"
CI_DEPLOYER = ("ci-deployer", "todo-app")
# Values that only stand in for the operator's own (RFC 2606/6761 names, the docs' tenancy namespace...).
PLACEHOLDERS = re.compile(
    r"(?:^|[.@/])example\.(?:com|org|net)\b|\.invalid\b|axxxxxxxxxxx|set-by-overlay|<[A-Z][A-Z0-9_-]*>|\bCHANGEME\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Check:
    name: str
    findings: list[str]

    @property
    def ok(self) -> bool:
        return not self.findings


def environment_file(overlay: str, kustomize_dir: Path = KUSTOMIZE_DIR) -> Path | None:
    """The overlay's environment.yaml, in its own folder or in an overlay it includes (prod -> prod-apps)."""
    folder = overlay_dir(overlay, kustomize_dir)
    seen: set[Path] = set()
    while folder not in seen:
        seen.add(folder)
        if (folder / "environment.yaml").is_file():
            return folder / "environment.yaml"
        doc = yaml.safe_load((folder / "kustomization.yaml").read_text()) or {}
        included = [(folder / r).resolve() for r in doc.get("resources") or []
                    if (folder / r).resolve().parent == (kustomize_dir / "overlays").resolve()]
        if not included:
            return None
        folder = included[0]
    return None


def environment_settings(overlay: str, kustomize_dir: Path = KUSTOMIZE_DIR) -> dict[str, str]:
    path = environment_file(overlay, kustomize_dir)
    if path is None:
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    return {str(k): str(v) for k, v in (doc.get("data") or {}).items()}


def _strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _strings(item, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node


def placeholders(objs: list[dict[str, Any]], settings: dict[str, str], settings_name: str) -> list[str]:
    """Every value that is still a documentation placeholder, in the settings and the rendered objects."""
    found = [f"{settings_name}: {key} is a placeholder ({value})" for key, value in settings.items()
             if PLACEHOLDERS.search(value)]
    for obj in objs:
        if obj.get("kind") == "PrometheusRule":
            continue  # alert texts, not settings
        for where, value in _strings(obj.get("spec", obj.get("data", {})), "spec" if "spec" in obj else "data"):
            if PLACEHOLDERS.search(value):
                found.append(f"{ObjectRef.of(obj)}: {where} is a placeholder ({value})")
    return sorted(set(found))


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(spec.get("containers") or [])


def cluster_consistency(objs: list[dict[str, Any]], settings: dict[str, str], spec: ClusterSpec) -> list[str]:
    """The overlay agrees with the cluster it is meant for, and with itself."""
    found = []
    if spec.cni != CALICO_CNI:
        found.append(f"cluster CNI is {spec.cni}: the bootstrap installs Calico in policy-only mode on flannel "
                     f"({CALICO_CNI}); with another CNI the NetworkPolicies are not enforced as configured")
    for pol in select(objs, "NetworkPolicy"):
        if pol["metadata"]["name"] != "allow-kube-api":
            continue
        cidrs = {peer["ipBlock"]["cidr"] for rule in pol["spec"].get("egress") or [] for peer in rule.get("to") or []
                 if "ipBlock" in peer}
        if cidrs != {spec.api_endpoint_subnet_cidr}:
            found.append(f"{ObjectRef.of(pol)} allows the API server at {', '.join(sorted(cidrs))} but the cluster's "
                         f"API endpoint subnet is {spec.api_endpoint_subnet_cidr} ({spec.source})")
    prefix = settings.get("image-prefix", "")
    for dep in select(objs, "Deployment", "todo-app"):
        for container in _containers(dep):
            if prefix and not str(container.get("image", "")).startswith(prefix):
                found.append(f"{ObjectRef.of(dep)}: image {container.get('image')} is not under image-prefix {prefix}: "
                             "continuous deployment could not update it (todo-ci-deployer-guard)")
    endpoint = settings.get("object-storage-endpoint", "")
    match = re.fullmatch(r"https://([^.]+)\.compat\.objectstorage\.([^.]+)\.oraclecloud\.com/?", endpoint)
    if endpoint and not match:
        found.append(f"object-storage-endpoint {endpoint} is not https://<namespace>.compat.objectstorage.<region>.oraclecloud.com")
    elif match:
        namespace, region = match.groups()
        if settings.get("oci-region") and region != settings["oci-region"]:
            found.append(f"object-storage-endpoint is in region {region}, oci-region says {settings['oci-region']}")
        parts = prefix.split("/")
        if len(parts) > 1 and parts[0].endswith(".ocir.io") and parts[1] != namespace:
            found.append(f"image-prefix names tenancy namespace {parts[1]}, object-storage-endpoint {namespace}")
    return found


def quotas_admit(objs: list[dict[str, Any]], plan: budget_model.Budget) -> list[str]:
    """Every ResourceQuota admits what the budget runs in its namespace during a rollout at maximum scale."""
    found = []
    volumes: dict[str, list[budget_model.Volume]] = {}
    for vol in plan.volumes:
        volumes.setdefault(vol.namespace, []).append(vol)
    for quota in select(objs, "ResourceQuota"):
        ns, hard = quota["metadata"]["namespace"], quota["spec"].get("hard") or {}
        used = plan.usage(budget_model.Scale.ROLLOUT, ns)
        checks: list[tuple[str, float, Callable[[str], float]]] = [
            ("requests.cpu", used.cpu_m, cpu_millis), ("requests.memory", used.mem_mib, mem_mib),
            ("pods", used.pods, float), ("persistentvolumeclaims", len(volumes.get(ns, [])), float),
            ("requests.storage", sum(v.requested_gib for v in volumes.get(ns, [])), storage_gib)]
        for key, need, parse in checks:
            if key in hard and need > parse(str(hard[key])):
                found.append(f"ResourceQuota {ns}/{quota['metadata']['name']}: {key} {hard[key]} is less than the "
                             f"{need:g} needed during a rollout at maximum scale")
    return found


def deployer_reach(apps_objs: list[dict[str, Any]], all_objs: list[dict[str, Any]]) -> list[str]:
    """ci-deployer may `kubectl apply` every object of the apps overlay (get and patch each)."""
    account, namespace = CI_DEPLOYER
    role = access.service_account_role(all_objs, account, namespace)
    if role is None:
        return [f"no Role is bound to ServiceAccount {namespace}/{account}"]
    return [f"{account} cannot {item}" for item in access.refused(apps_objs, role)]


def resolves_to(host: str, address: str) -> list[str]:
    """The public host already resolves to the load balancer (Let's Encrypt's HTTP-01 check needs it)."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return [f"--resolves-to {address!r} is not an IP address"]
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        return [f"{host} does not resolve yet ({exc.strerror or exc}): point it at {address} and wait for DNS"]
    if address not in found:
        return [f"{host} resolves to {', '.join(sorted(found))}, not to the load balancer {address}: Let's Encrypt "
                "would fail the HTTP-01 challenge (and failures count against its rate limit)"]
    return []


def run_checks(overlay: str, spec: ClusterSpec, *, address: str | None = None,
               kustomize_dir: Path = KUSTOMIZE_DIR) -> list[Check]:
    """Every preflight check of one overlay (of the kustomize tree at `kustomize_dir`), in the order an operator
    would fix them."""
    def render(name: str) -> list[dict[str, Any]]:
        return render_dir(overlay_dir(name, kustomize_dir))

    objs = render(overlay)
    settings = environment_settings(overlay, kustomize_dir)
    path = environment_file(overlay, kustomize_dir)
    settings_name = str(path.relative_to(kustomize_dir.parent)) if path else "(no environment.yaml)"
    environment = "prod" if overlay.startswith("prod") else overlay
    operators_dir = kustomize_dir / "operators"
    plan = budget_model.compute(objs, overlay=overlay, spec=spec, operators_dir=operators_dir)
    checks = [Check("no placeholder values", placeholders(objs, settings, settings_name))]
    if environment == "prod":  # a local cluster (dev) is not the OKE cluster of the spec
        checks.append(Check("overlay matches the cluster spec", cluster_consistency(objs, settings, spec)))
    checks += [
        Check("fits Always Free (budget)", [] if plan.fits else ["todo-console budget --overlay "
                                                                 f"{overlay}: DOES NOT FIT"]),
        Check("quotas admit the budget", quotas_admit(objs, plan)),
    ]
    steps = bootstrap.dry_run(environment, script=operators_dir / "install.sh")
    replay = bootstrap.replay_bootstrap(environment, steps, objs, operators_dir)
    checks.append(Check("bootstrap creates everything before it is needed", replay.problems))
    apps_overlay = f"{overlay}-apps"
    if (kustomize_dir / "overlays" / apps_overlay).is_dir():
        checks.append(Check(f"ci-deployer can apply overlays/{apps_overlay}", deployer_reach(render(apps_overlay), objs)))
    if address is not None:
        vs = next(iter(select(objs, "VirtualServer")), None)
        host = vs["spec"]["host"] if vs else settings.get("host", "")
        checks.append(Check(f"{host} resolves to {address}", resolves_to(host, address)))
    return checks

