"""The Always Free budget of a rendered overlay: CPU and memory requests, and block volumes.

Adds up what the cluster must reserve when every workload runs at its minimum scale (HPA/KEDA minimum):
the app pods and their daprd sidecars (from the rendered Deployments and their dapr.io/sidecar-*
annotations), Strimzi's pods (from the Kafka and KafkaNodePool resources), the operators and monitoring
stack (from the Helm values kept in kustomize/operators) and what OKE itself runs in kube-system
(kustomize/operators/oke-system.yaml). Requests missing anywhere fall back to the namespace's LimitRange
default, as the API server would apply it.

Storage: OKE creates every block volume at 50 GB at least, so each PVC counts max(50, size) GB against
the 200 GB Always Free allowance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from console.manifests.quantity import cpu_millis, mem_mib, storage_gib
from console.manifests.render import KUSTOMIZE_DIR, pod_template, select

OPERATORS_DIR = KUSTOMIZE_DIR / "operators"

# Always Free Ampere A1 (across the node pool) and block storage.
CAPACITY_CPU_M = 4000
CAPACITY_MEM_MIB = 24 * 1024
CAPACITY_STORAGE_GB = 200
MIN_VOLUME_GB = 50
DEFAULT_NODES = 2


class BudgetError(Exception):
    """Inputs the budget cannot be computed from (missing values file, bad quantity)."""


@dataclass
class Line:
    """One kind of pod (or container group) with its per-replica requests."""

    group: str
    name: str
    namespace: str
    replicas: int
    cpu_m: int
    mem_mib: float
    source: str
    max_replicas: int | None = None

    @property
    def total_cpu_m(self) -> int:
        return self.cpu_m * self.replicas

    @property
    def total_mem_mib(self) -> float:
        return self.mem_mib * self.replicas


@dataclass
class Volume:
    """One block volume: what is asked for and what OKE bills against the allowance."""

    name: str
    namespace: str
    requested_gib: float
    source: str

    @property
    def billed_gb(self) -> int:
        return max(MIN_VOLUME_GB, math.ceil(self.requested_gib))


@dataclass
class Budget:
    overlay: str
    nodes: int
    lines: list[Line] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    boot_volume_gb: int = 0

    @property
    def cpu_m(self) -> int:
        return sum(line.total_cpu_m for line in self.lines)

    @property
    def mem_mib(self) -> float:
        return sum(line.total_mem_mib for line in self.lines)

    @property
    def max_cpu_m(self) -> int:
        return sum(line.cpu_m * (line.max_replicas or line.replicas) for line in self.lines)

    @property
    def max_mem_mib(self) -> float:
        return sum(line.mem_mib * (line.max_replicas or line.replicas) for line in self.lines)

    @property
    def storage_gb(self) -> int:
        return sum(v.billed_gb for v in self.volumes) + self.boot_volume_gb * self.nodes

    @property
    def fits_cpu(self) -> bool:
        return self.cpu_m <= CAPACITY_CPU_M

    @property
    def fits_memory(self) -> bool:
        return self.mem_mib <= CAPACITY_MEM_MIB

    @property
    def fits_storage(self) -> bool:
        return self.storage_gb <= CAPACITY_STORAGE_GB

    @property
    def fits(self) -> bool:
        return self.fits_cpu and self.fits_memory and self.fits_storage

    def by_group(self) -> dict[str, tuple[int, float]]:
        groups: dict[str, tuple[int, float]] = {}
        for line in self.lines:
            cpu, mem = groups.get(line.group, (0, 0.0))
            groups[line.group] = (cpu + line.total_cpu_m, mem + line.total_mem_mib)
        return groups

    def to_dict(self) -> dict[str, Any]:
        return {
            "overlay": self.overlay,
            "nodes": self.nodes,
            "capacity": {"cpu_m": CAPACITY_CPU_M, "memory_mib": CAPACITY_MEM_MIB, "storage_gb": CAPACITY_STORAGE_GB,
                         "min_volume_gb": MIN_VOLUME_GB},
            "requests": {"cpu_m": self.cpu_m, "memory_mib": round(self.mem_mib, 1)},
            "at_max_scale": {"cpu_m": self.max_cpu_m, "memory_mib": round(self.max_mem_mib, 1)},
            "groups": {g: {"cpu_m": c, "memory_mib": round(m, 1)} for g, (c, m) in self.by_group().items()},
            "storage": {"billed_gb": self.storage_gb, "boot_volumes_gb": self.boot_volume_gb * self.nodes,
                        "volumes": [{**asdict(v), "billed_gb": v.billed_gb} for v in self.volumes]},
            "lines": [{**asdict(line), "total_cpu_m": line.total_cpu_m, "total_mem_mib": round(line.total_mem_mib, 1)}
                      for line in self.lines],
            "fits": {"cpu": self.fits_cpu, "memory": self.fits_memory, "storage": self.fits_storage,
                     "all": self.fits},
        }


# ----------------------------------------------------------------------------- helpers

def _get(values: dict[str, Any], path: str, default: Any = None) -> Any:
    node: Any = values
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _requests(resources: dict[str, Any] | None, fallback: tuple[int, float]) -> tuple[int, float]:
    """(cpu m, memory MiB) requested; a missing request defaults to the limit, then to the fallback."""
    resources = resources or {}
    req, lim = resources.get("requests") or {}, resources.get("limits") or {}
    cpu = req.get("cpu", lim.get("cpu"))
    mem = req.get("memory", lim.get("memory"))
    return (cpu_millis(cpu) if cpu is not None else fallback[0], mem_mib(mem) if mem is not None else fallback[1])


def limitrange_defaults(objs: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """Per namespace, the container request a LimitRange fills in (defaultRequest, else default limit)."""
    out: dict[str, tuple[int, float]] = {}
    for lr in select(objs, "LimitRange"):
        for item in lr["spec"].get("limits", []):
            if item.get("type") != "Container":
                continue
            req, lim = item.get("defaultRequest") or {}, item.get("default") or {}
            out[lr["metadata"]["namespace"]] = (
                cpu_millis(req.get("cpu", lim.get("cpu"))), mem_mib(req.get("memory", lim.get("memory")))
            )
    return out


# ----------------------------------------------------------------------------- rendered workloads

def _scale(objs: list[dict[str, Any]], kind: str, name: str, namespace: str, replicas: int) -> tuple[int, int | None]:
    """(minimum, maximum) replicas of a workload, honouring an HPA or a KEDA ScaledObject on it."""
    for hpa in select(objs, "HorizontalPodAutoscaler", namespace):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind") == kind and ref.get("name") == name:
            return int(hpa["spec"].get("minReplicas", 1)), int(hpa["spec"]["maxReplicas"])
    for so in select(objs, "ScaledObject", namespace):
        ref = so["spec"]["scaleTargetRef"]
        if ref.get("kind", "Deployment") == kind and ref.get("name") == name:
            return int(so["spec"].get("minReplicaCount", 0)), int(so["spec"].get("maxReplicaCount", 100))
    return replicas, None


def workload_lines(objs: list[dict[str, Any]], nodes: int) -> list[Line]:
    """App containers and daprd sidecars of every rendered Deployment, StatefulSet and DaemonSet."""
    defaults = limitrange_defaults(objs)
    lines: list[Line] = []
    for obj in objs:
        if obj.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        meta, template = obj["metadata"], pod_template(obj) or {}
        ns, name = meta.get("namespace", "default"), meta["name"]
        fallback = defaults.get(ns, (0, 0.0))
        if obj["kind"] == "DaemonSet":
            replicas, max_replicas = nodes, None
        else:
            replicas, max_replicas = _scale(objs, obj["kind"], name, ns, int(obj["spec"].get("replicas", 1)))
        spec = template.get("spec") or {}
        cpu = mem = 0.0
        for container in spec.get("containers") or []:
            c, m = _requests(container.get("resources"), fallback)
            cpu, mem = cpu + c, mem + m
        for container in spec.get("initContainers") or []:  # init containers run before, not beside
            c, m = _requests(container.get("resources"), fallback)
            cpu, mem = max(cpu, c), max(mem, m)
        lines.append(Line("apps", name, ns, replicas, int(cpu), mem, f"{obj['kind']} {ns}/{name}", max_replicas))
        ann = (template.get("metadata") or {}).get("annotations") or {}
        if str(ann.get("dapr.io/enabled", "")).lower() == "true":
            s_cpu = ann.get("dapr.io/sidecar-cpu-request", ann.get("dapr.io/sidecar-cpu-limit"))
            s_mem = ann.get("dapr.io/sidecar-memory-request", ann.get("dapr.io/sidecar-memory-limit"))
            source = "dapr.io/sidecar-* annotations" if s_cpu or s_mem else f"LimitRange default in {ns}"
            lines.append(Line(
                "dapr-sidecars", f"{name} daprd", ns, replicas,
                cpu_millis(s_cpu) if s_cpu else fallback[0], mem_mib(s_mem) if s_mem else fallback[1],
                source, max_replicas,
            ))
    return lines


def strimzi_lines(objs: list[dict[str, Any]]) -> list[Line]:
    """Kafka nodes (per KafkaNodePool), entity operator, Kafka Exporter and Cruise Control of each Kafka."""
    defaults = limitrange_defaults(objs)
    lines: list[Line] = []
    for kafka in select(objs, "Kafka"):
        ns, cluster = kafka["metadata"].get("namespace", "default"), kafka["metadata"]["name"]
        fallback = defaults.get(ns, (0, 0.0))
        spec = kafka["spec"]
        for pool in select(objs, "KafkaNodePool", ns):
            if (pool["metadata"].get("labels") or {}).get("strimzi.io/cluster") != cluster:
                continue
            res = pool["spec"].get("resources") or spec["kafka"].get("resources")
            cpu, mem = _requests(res, fallback)
            name = f"{cluster}-{pool['metadata']['name']}"
            lines.append(Line("strimzi", name, ns, int(pool["spec"]["replicas"]), cpu, mem, f"KafkaNodePool {ns}/{name}"))
        eo = spec.get("entityOperator")
        if eo is not None:
            cpu, mem = 0, 0.0
            for part in ("topicOperator", "userOperator"):
                if part in eo:
                    c, m = _requests((eo[part] or {}).get("resources"), fallback)
                    cpu, mem = cpu + c, mem + m
            lines.append(Line("strimzi", f"{cluster}-entity-operator", ns, 1, int(cpu), mem, f"Kafka {ns}/{cluster}"))
        for part, suffix in (("kafkaExporter", "kafka-exporter"), ("cruiseControl", "cruise-control")):
            if part in spec:
                c, m = _requests((spec[part] or {}).get("resources"), fallback)
                lines.append(Line("strimzi", f"{cluster}-{suffix}", ns, 1, c, m, f"Kafka {ns}/{cluster}"))
    return lines


def rendered_volumes(objs: list[dict[str, Any]]) -> list[Volume]:
    """PVCs the rendered objects will create: PVCs, StatefulSet claim templates, Strimzi persistent storage."""
    vols: list[Volume] = []
    for pvc in select(objs, "PersistentVolumeClaim"):
        ns = pvc["metadata"].get("namespace", "default")
        size = pvc["spec"]["resources"]["requests"]["storage"]
        vols.append(Volume(pvc["metadata"]["name"], ns, storage_gib(size), f"PersistentVolumeClaim {ns}"))
    for sts in select(objs, "StatefulSet"):
        ns = sts["metadata"].get("namespace", "default")
        for tmpl in sts["spec"].get("volumeClaimTemplates") or []:
            size = tmpl["spec"]["resources"]["requests"]["storage"]
            for i in range(int(sts["spec"].get("replicas", 1))):
                vols.append(Volume(f"{tmpl['metadata']['name']}-{sts['metadata']['name']}-{i}", ns, storage_gib(size),
                                   f"StatefulSet {ns}/{sts['metadata']['name']}"))
    for pool in select(objs, "KafkaNodePool"):
        ns = pool["metadata"].get("namespace", "default")
        storage = pool["spec"].get("storage") or {}
        disks = storage.get("volumes", []) if storage.get("type") == "jbod" else [storage]
        for disk in disks:
            if disk.get("type") == "persistent-claim":
                for i in range(int(pool["spec"]["replicas"])):
                    vols.append(Volume(f"{pool['metadata']['name']}-{disk.get('id', 0)}-{i}", ns,
                                       storage_gib(disk["size"]), f"KafkaNodePool {ns}/{pool['metadata']['name']}"))
    return vols


# ----------------------------------------------------------------------------- helm-installed operators

@dataclass(frozen=True)
class HelmWorkload:
    """Where a chart keeps one workload's resources and replica count in its values."""

    name: str
    resources: str
    replicas: str | None = None
    fixed_replicas: int | None = None
    per_node: bool = False
    enabled: str | None = None
    enabled_default: bool = True


@dataclass(frozen=True)
class HelmVolume:
    """A PVC a chart creates, when enabled."""

    name: str
    size: str
    size_default: str
    count: int = 1
    enabled: str | None = None
    enabled_default: bool = True
    disabled_by: str | None = None


HELM_WORKLOADS: dict[str, tuple[HelmWorkload, ...]] = {
    "metrics-server": (HelmWorkload("metrics-server", "resources", "replicas"),),
    "kube-prometheus-stack": (
        HelmWorkload("prometheus", "prometheus.prometheusSpec.resources", "prometheus.prometheusSpec.replicas"),
        HelmWorkload("prometheus config-reloader", "prometheusOperator.prometheusConfigReloader.resources",
                     "prometheus.prometheusSpec.replicas"),
        HelmWorkload("alertmanager", "alertmanager.alertmanagerSpec.resources", "alertmanager.alertmanagerSpec.replicas",
                     enabled="alertmanager.enabled"),
        HelmWorkload("alertmanager config-reloader", "prometheusOperator.prometheusConfigReloader.resources",
                     "alertmanager.alertmanagerSpec.replicas", enabled="alertmanager.enabled"),
        HelmWorkload("prometheus-operator", "prometheusOperator.resources"),
        HelmWorkload("grafana", "grafana.resources", "grafana.replicas", enabled="grafana.enabled"),
        HelmWorkload("grafana sidecars (dashboards, datasources)", "grafana.sidecar.resources", fixed_replicas=2,
                     enabled="grafana.enabled"),
        HelmWorkload("kube-state-metrics", "kube-state-metrics.resources", "kube-state-metrics.replicas"),
        HelmWorkload("node-exporter", "prometheus-node-exporter.resources", per_node=True, enabled="nodeExporter.enabled"),
    ),
    "cert-manager": (
        HelmWorkload("cert-manager", "resources", "replicaCount"),
        HelmWorkload("cert-manager-webhook", "webhook.resources", "webhook.replicaCount"),
        HelmWorkload("cert-manager-cainjector", "cainjector.resources", "cainjector.replicaCount", enabled="cainjector.enabled"),
    ),
    "ingress-nginx": (HelmWorkload("ingress-nginx-controller", "controller.resources", "controller.replicaCount"),),
    "strimzi-kafka-operator": (HelmWorkload("strimzi-cluster-operator", "resources", "replicas"),),
    "dapr": (
        HelmWorkload("dapr-operator", "dapr_operator.resources", "dapr_operator.replicaCount"),
        HelmWorkload("dapr-sentry", "dapr_sentry.resources", "dapr_sentry.replicaCount"),
        HelmWorkload("dapr-sidecar-injector", "dapr_sidecar_injector.resources", "dapr_sidecar_injector.replicaCount"),
        # The chart hard-codes three scheduler replicas (an etcd quorum).
        HelmWorkload("dapr-scheduler-server", "dapr_scheduler.resources", fixed_replicas=3, enabled="global.scheduler.enabled"),
        HelmWorkload("dapr-placement-server", "dapr_placement.resources", fixed_replicas=1, enabled="global.actors.enabled"),
    ),
    "keda": (
        HelmWorkload("keda-operator", "resources.operator", "operator.replicaCount"),
        HelmWorkload("keda-operator-metrics-apiserver", "resources.metricServer", "metricsServer.replicaCount"),
        HelmWorkload("keda-admission-webhooks", "resources.webhooks", "webhooks.replicaCount"),
    ),
    "loki": (HelmWorkload("loki", "singleBinary.resources", "singleBinary.replicas"),),
    "fluent-bit": (HelmWorkload("fluent-bit", "resources", per_node=True),),
}

HELM_VOLUMES: dict[str, tuple[HelmVolume, ...]] = {
    "dapr": (HelmVolume("dapr-scheduler-data-dir", "dapr_scheduler.cluster.storageSize", "16Gi", count=3,
                        enabled="global.scheduler.enabled", disabled_by="dapr_scheduler.cluster.inMemoryStorage"),),
    "kube-prometheus-stack": (
        HelmVolume("prometheus-db", "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.resources.requests.storage",
                   "0", enabled="prometheus.prometheusSpec.storageSpec.volumeClaimTemplate", enabled_default=False),
        HelmVolume("alertmanager-db", "alertmanager.alertmanagerSpec.storage.volumeClaimTemplate.spec.resources.requests.storage",
                   "0", enabled="alertmanager.alertmanagerSpec.storage.volumeClaimTemplate", enabled_default=False),
        HelmVolume("grafana", "grafana.persistence.size", "10Gi", enabled="grafana.persistence.enabled", enabled_default=False),
    ),
    "loki": (HelmVolume("loki-storage", "singleBinary.persistence.size", "10Gi", enabled="singleBinary.persistence.enabled"),),
}


@dataclass(frozen=True)
class Release:
    """One pinned Helm release from kustomize/operators/versions.env."""

    name: str
    namespace: str
    repo: str
    chart: str
    version: str
    environments: tuple[str, ...]


def read_releases(directory: Path = OPERATORS_DIR) -> list[Release]:
    """The pinned releases in install order."""
    path = directory / "versions.env"
    releases = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.strip().split("|")
        if len(parts) != 6:
            raise BudgetError(f"{path}: malformed line {line!r} (want 6 |-separated fields)")
        name, ns, repo, chart, version, envs = parts
        releases.append(Release(name, ns, repo, chart, version, tuple(e for e in envs.split(",") if e)))
    return releases


def release_values(release: str, environment: str, directory: Path = OPERATORS_DIR) -> dict[str, Any]:
    """values.yaml merged with values-<environment>.yaml, as install.sh passes them to Helm."""
    base = directory / release / "values.yaml"
    if not base.is_file():
        raise BudgetError(f"no Helm values for {release}: {base} is missing")
    values = yaml.safe_load(base.read_text()) or {}
    extra = directory / release / f"values-{environment}.yaml"
    if extra.is_file():
        values = _merge(values, yaml.safe_load(extra.read_text()) or {})
    return values


def helm_lines(environment: str, nodes: int, directory: Path = OPERATORS_DIR) -> tuple[list[Line], list[Volume]]:
    lines: list[Line] = []
    vols: list[Volume] = []
    for rel in read_releases(directory):
        if environment not in rel.environments:
            continue
        values = release_values(rel.name, environment, directory)
        source = f"{rel.name} {rel.version} values"
        for wl in HELM_WORKLOADS.get(rel.name, ()):
            if wl.enabled and not _get(values, wl.enabled, wl.enabled_default):
                continue
            if wl.per_node:
                replicas = nodes
            elif wl.fixed_replicas is not None:
                replicas = wl.fixed_replicas
            else:
                replicas = int(_get(values, wl.replicas, 1) if wl.replicas else 1)
            cpu, mem = _requests(_get(values, wl.resources), (0, 0.0))
            lines.append(Line("operators", wl.name, rel.namespace, replicas, cpu, mem, source))
        for hv in HELM_VOLUMES.get(rel.name, ()):
            if hv.enabled and not _get(values, hv.enabled, hv.enabled_default):
                continue
            if hv.disabled_by and _get(values, hv.disabled_by, False):
                continue
            size = storage_gib(_get(values, hv.size, hv.size_default))
            for i in range(hv.count):
                vols.append(Volume(f"{hv.name}-{i}" if hv.count > 1 else hv.name, rel.namespace, size, source))
    return lines, vols


def unset_helm_requests(environment: str, directory: Path = OPERATORS_DIR) -> list[str]:
    """Helm workloads whose values set no CPU or memory request (the budget would count them as zero)."""
    missing = []
    for rel in read_releases(directory):
        if environment not in rel.environments:
            continue
        values = release_values(rel.name, environment, directory)
        for wl in HELM_WORKLOADS.get(rel.name, ()):
            if wl.enabled and not _get(values, wl.enabled, wl.enabled_default):
                continue
            req = (_get(values, wl.resources) or {}).get("requests") or {}
            if "cpu" not in req or "memory" not in req:
                missing.append(f"{rel.name}: {wl.name} ({wl.resources}.requests)")
    return missing


def system_lines(nodes: int, path: Path = OPERATORS_DIR / "oke-system.yaml") -> list[Line]:
    data = yaml.safe_load(path.read_text()) or {}
    lines = []
    for wl in data.get("workloads", []):
        replicas = nodes if wl.get("per_node") else int(wl.get("replicas", 1))
        cpu, mem = _requests({"requests": wl.get("requests")}, (0, 0.0))
        lines.append(Line("oke-system", wl["name"], "kube-system", replicas, cpu, mem, path.name))
    return lines


def compute(
    objs: list[dict[str, Any]],
    *,
    overlay: str,
    nodes: int = DEFAULT_NODES,
    boot_volume_gb: int = 0,
    operators_dir: Path = OPERATORS_DIR,
) -> Budget:
    """The whole budget of one rendered overlay plus its operators."""
    if nodes < 1:
        raise BudgetError("a node pool has at least one node")
    budget = Budget(overlay=overlay, nodes=nodes, boot_volume_gb=boot_volume_gb)
    budget.lines += workload_lines(objs, nodes)
    budget.lines += strimzi_lines(objs)
    helm, helm_vols = helm_lines(overlay, nodes, operators_dir)
    budget.lines += helm
    budget.lines += system_lines(nodes, operators_dir / "oke-system.yaml")
    budget.volumes += rendered_volumes(objs) + helm_vols
    return budget


def format_report(budget: Budget, lines: Iterable[Line] | None = None) -> str:
    """A plain-text report: one row per workload, group subtotals, totals against the allowance."""
    rows = list(lines if lines is not None else budget.lines)
    out = [f"Always Free budget: overlay {budget.overlay}, {budget.nodes} node(s), requests at minimum scale", ""]
    header = f"{'group':<14} {'workload':<44} {'namespace':<14} {'x':>3} {'cpu(m)':>8} {'mem(Mi)':>9}"
    out += [header, "-" * len(header)]
    for line in rows:
        out.append(f"{line.group:<14} {line.name[:44]:<44} {line.namespace[:14]:<14} {line.replicas:>3} "
                   f"{line.total_cpu_m:>8} {line.total_mem_mib:>9.0f}")
    out.append("-" * len(header))
    for group, (cpu, mem) in budget.by_group().items():
        out.append(f"{'subtotal':<14} {group:<44} {'':<14} {'':>3} {cpu:>8} {mem:>9.0f}")
    out.append("")

    def verdict(ok: bool) -> str:
        return "fits" if ok else "DOES NOT FIT"

    out.append(f"CPU requests:    {budget.cpu_m:>6} m   of {CAPACITY_CPU_M} m (4 OCPU)    "
               f"{100 * budget.cpu_m / CAPACITY_CPU_M:5.1f} %  {verdict(budget.fits_cpu)}")
    out.append(f"Memory requests: {budget.mem_mib / 1024:>6.2f} GiB of {CAPACITY_MEM_MIB // 1024} GiB          "
               f"{100 * budget.mem_mib / CAPACITY_MEM_MIB:5.1f} %  {verdict(budget.fits_memory)}")
    out.append(f"At maximum scale (HPA/KEDA max): {budget.max_cpu_m} m CPU, {budget.max_mem_mib / 1024:.2f} GiB")
    out.append("")
    out.append(f"Block volumes (each at least {MIN_VOLUME_GB} GB on OKE):")
    for vol in budget.volumes:
        out.append(f"  {vol.name:<40} {vol.namespace:<14} asks {vol.requested_gib:>6.1f} GiB -> {vol.billed_gb} GB")
    if budget.boot_volume_gb:
        out.append(f"  {'node boot volumes':<40} {'':<14} {budget.nodes} x {budget.boot_volume_gb} GB"
                   f" -> {budget.nodes * budget.boot_volume_gb} GB")
    out.append(f"Storage: {budget.storage_gb} GB of {CAPACITY_STORAGE_GB} GB  {verdict(budget.fits_storage)}")
    if not budget.boot_volume_gb:
        out.append("  (node boot volumes not counted; OCI counts them in the same 200 GB: use --boot-volume-gb 50)")
    out.append("")
    out.append("Result: " + ("fits the Always Free allowance" if budget.fits else "DOES NOT FIT the Always Free allowance"))
    return "\n".join(out)
