"""The Always Free budget of a rendered overlay: CPU and memory against the nodes' allocatable, and storage.

Every kind of pod the cluster runs is counted with all its containers: the app pods with their daprd sidecars
(from the rendered Deployments and their dapr.io/sidecar-* annotations), Strimzi's pods (Kafka and
KafkaNodePool), PostgreSQL (the CloudNativePG Cluster),
the operators and monitoring stack (the Helm values in kustomize/operators), Calico (calico/settings.env) and
what OKE itself runs (oke-system.yaml). A request missing anywhere falls back to the namespace's LimitRange
default, as the API server would apply it.

Three moments are compared with what the node pool can give pods, the allocatable (each node's capacity minus
OKE's kube-reserved and the eviction threshold, oke-system.yaml), in total and pod by pod on the nodes:
minimum scale, maximum scale (HPA/KEDA maximum) and a rollout of every Deployment at maximum scale (each runs
its maxSurge extra pods, sidecars included). Storage: every node's boot volume, and every PVC at OKE's
50 GB minimum, against the 200 GB allowance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from console.manifests.cluster_spec import ClusterSpec, NodePool
from console.manifests.quantity import cpu_millis, mem_mib, storage_gib
from console.manifests.render import KUSTOMIZE_DIR, pod_template, select

OPERATORS_DIR = KUSTOMIZE_DIR / "operators"

# Always Free: Ampere A1 across all instances, block volume storage (boot volumes included).
FREE_A1_SHAPE = "VM.Standard.A1.Flex"
FREE_OCPUS = 4
FREE_MEMORY_GB = 24
CAPACITY_STORAGE_GB = 200
MIN_VOLUME_GB = 50
SIDECAR = "daprd"


class BudgetError(Exception):
    """Inputs the budget cannot be computed from (missing values file, bad quantity)."""


class Scale(Enum):
    MINIMUM = "minimum scale"
    MAXIMUM = "maximum scale"
    ROLLOUT = "rollout at maximum scale"


@dataclass
class Pod:
    """One kind of pod: per-replica requests of all its containers, and how many run when."""

    group: str
    name: str
    namespace: str
    cpu_m: int
    mem_mib: float
    source: str
    min_replicas: int = 1
    max_replicas: int | None = None
    surge: int = 0
    per_node: bool = False
    sidecar_cpu_m: int = 0
    sidecar_mem_mib: float = 0.0

    def replicas(self, scale: Scale, nodes: int) -> int:
        if self.per_node:
            return nodes
        top = self.max_replicas if self.max_replicas is not None else self.min_replicas
        return {Scale.MINIMUM: self.min_replicas, Scale.MAXIMUM: top, Scale.ROLLOUT: top + self.surge}[scale]


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


@dataclass(frozen=True)
class Reserved:
    """What the kubelet keeps back from pods on one node."""

    cpu_m: int
    mem_mib: float


@dataclass(frozen=True)
class Usage:
    cpu_m: int
    mem_mib: float
    pods: int


@dataclass
class Budget:
    overlay: str
    spec: ClusterSpec
    reserved: Reserved
    pods: list[Pod] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)

    # ------------------------------------------------------------------ capacity
    @property
    def pool(self) -> NodePool:
        return self.spec.node_pool

    @property
    def nodes(self) -> int:
        return self.pool.size

    @property
    def allocatable_cpu_m_per_node(self) -> int:
        return self.pool.cpu_m_per_node - self.reserved.cpu_m

    @property
    def allocatable_mem_mib_per_node(self) -> float:
        return self.pool.memory_mib_per_node - self.reserved.mem_mib

    @property
    def allocatable_cpu_m(self) -> int:
        return self.allocatable_cpu_m_per_node * self.nodes

    @property
    def allocatable_mem_mib(self) -> float:
        return self.allocatable_mem_mib_per_node * self.nodes

    @property
    def always_free_pool(self) -> bool:
        """The node pool itself stays inside Always Free's Ampere A1 allowance."""
        pool = self.pool
        return (pool.shape == FREE_A1_SHAPE and pool.size * pool.ocpus_per_node <= FREE_OCPUS
                and pool.size * pool.memory_gb_per_node <= FREE_MEMORY_GB)

    # ------------------------------------------------------------------ demand
    def usage(self, scale: Scale, namespace: str | None = None) -> Usage:
        chosen = [p for p in self.pods if namespace is None or p.namespace == namespace]
        return Usage(
            cpu_m=sum(p.cpu_m * p.replicas(scale, self.nodes) for p in chosen),
            mem_mib=sum(p.mem_mib * p.replicas(scale, self.nodes) for p in chosen),
            pods=sum(p.replicas(scale, self.nodes) for p in chosen),
        )

    def fits_at(self, scale: Scale) -> bool:
        used = self.usage(scale)
        return used.cpu_m <= self.allocatable_cpu_m and used.mem_mib <= self.allocatable_mem_mib

    def unplaced(self, scale: Scale) -> list[str]:
        """Pods that find no node: DaemonSet pods take their share of every node, then the others are placed
        largest first on the first node with room (first-fit decreasing, stricter than the scheduler needs)."""
        free_cpu = [self.allocatable_cpu_m_per_node] * self.nodes
        free_mem = [self.allocatable_mem_mib_per_node] * self.nodes
        for pod in self.pods:
            if pod.per_node:
                free_cpu = [c - pod.cpu_m for c in free_cpu]
                free_mem = [m - pod.mem_mib for m in free_mem]
        singles = [p for p in self.pods if not p.per_node for _ in range(p.replicas(scale, self.nodes))]
        cpu_cap, mem_cap = self.allocatable_cpu_m_per_node, self.allocatable_mem_mib_per_node
        singles.sort(key=lambda p: max(p.cpu_m / cpu_cap, p.mem_mib / mem_cap), reverse=True)
        missing = []
        for pod in singles:
            node = next((i for i in range(self.nodes) if free_cpu[i] >= pod.cpu_m and free_mem[i] >= pod.mem_mib), None)
            if node is None:
                missing.append(f"{pod.namespace}/{pod.name}")
                continue
            free_cpu[node] -= pod.cpu_m
            free_mem[node] -= pod.mem_mib
        if min(free_cpu, default=0) < 0 or min(free_mem, default=0) < 0:
            missing.insert(0, "the DaemonSet pods themselves")
        return missing

    # ------------------------------------------------------------------ storage
    @property
    def boot_volumes_gb(self) -> int:
        return self.pool.boot_volume_gb * self.nodes

    @property
    def storage_gb(self) -> int:
        return sum(v.billed_gb for v in self.volumes) + self.boot_volumes_gb

    @property
    def fits_storage(self) -> bool:
        return self.storage_gb <= CAPACITY_STORAGE_GB

    # ------------------------------------------------------------------ verdict
    @property
    def fits_compute(self) -> bool:
        return all(self.fits_at(scale) and not self.unplaced(scale) for scale in Scale)

    @property
    def fits(self) -> bool:
        return self.always_free_pool and self.fits_compute and self.fits_storage

    def by_group(self, scale: Scale) -> dict[str, Usage]:
        groups: dict[str, list[Pod]] = {}
        for pod in self.pods:
            groups.setdefault(pod.group, []).append(pod)
        return {g: Usage(sum(p.cpu_m * p.replicas(scale, self.nodes) for p in ps),
                         sum(p.mem_mib * p.replicas(scale, self.nodes) for p in ps),
                         sum(p.replicas(scale, self.nodes) for p in ps)) for g, ps in groups.items()}

    def to_dict(self) -> dict[str, Any]:
        scales = {}
        for scale in Scale:
            used = self.usage(scale)
            scales[scale.name.lower()] = {"cpu_m": used.cpu_m, "memory_mib": round(used.mem_mib, 1), "pods": used.pods,
                                          "fits": self.fits_at(scale), "unplaced": self.unplaced(scale)}
        return {
            "overlay": self.overlay,
            "node_pool": {**asdict(self.pool), "source": self.spec.source, "always_free": self.always_free_pool},
            "allocatable": {"cpu_m_per_node": self.allocatable_cpu_m_per_node,
                            "memory_mib_per_node": round(self.allocatable_mem_mib_per_node, 1),
                            "cpu_m": self.allocatable_cpu_m, "memory_mib": round(self.allocatable_mem_mib, 1),
                            "reserved_per_node": asdict(self.reserved)},
            "scales": scales,
            "pods": [asdict(p) for p in self.pods],
            "storage": {"billed_gb": self.storage_gb, "capacity_gb": CAPACITY_STORAGE_GB,
                        "boot_volumes_gb": self.boot_volumes_gb,
                        "volumes": [{**asdict(v), "billed_gb": v.billed_gb} for v in self.volumes],
                        "fits": self.fits_storage},
            "fits": self.fits,
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


def _tiered(amount: float, tiers: list[dict[str, Any]]) -> float:
    """Sum of `each` per unit of `amount`, tier by tier (each tier ends at `up_to`, the last one never)."""
    total, start = 0.0, 0.0
    for tier in tiers:
        end = amount if tier.get("up_to") is None else min(amount, float(tier["up_to"]))
        if end > start:
            total += (end - start) * float(tier["each"])
            start = end
    return total


def node_reserved(pool: NodePool, path: Path = OPERATORS_DIR / "oke-system.yaml") -> Reserved:
    """kube-reserved plus the eviction threshold on one node of the pool (oke-system.yaml, node_reserved)."""
    data = (yaml.safe_load(path.read_text()) or {}).get("node_reserved")
    if not data:
        raise BudgetError(f"{path}: no node_reserved section")
    cpu = _tiered(pool.ocpus_per_node, data["cpu_m_per_ocpu"])
    mem = _tiered(pool.memory_gb_per_node, data["memory_mib_per_gb"]) + float(data.get("eviction_hard_memory_mib", 0))
    return Reserved(math.ceil(cpu), mem)


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


def _surge(obj: dict[str, Any], replicas: int) -> int:
    """Extra pods a Deployment runs during a rolling update at `replicas` (maxSurge, default 25 %)."""
    if obj["kind"] != "Deployment":
        return 0
    strategy = obj["spec"].get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return math.ceil(replicas * int(surge[:-1]) / 100)
    return int(surge)


def workload_pods(objs: list[dict[str, Any]]) -> list[Pod]:
    """Every rendered Deployment, StatefulSet and DaemonSet: its containers plus the injected daprd sidecar."""
    defaults = limitrange_defaults(objs)
    pods: list[Pod] = []
    for obj in objs:
        if obj.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        meta, template = obj["metadata"], pod_template(obj) or {}
        ns, name = meta.get("namespace", "default"), meta["name"]
        fallback = defaults.get(ns, (0, 0.0))
        spec = template.get("spec") or {}
        cpu, mem = 0, 0.0
        for container in spec.get("containers") or []:
            c, m = _requests(container.get("resources"), fallback)
            cpu, mem = cpu + c, mem + m
        for container in spec.get("initContainers") or []:  # init containers run before, not beside
            c, m = _requests(container.get("resources"), fallback)
            cpu, mem = max(cpu, c), max(mem, m)
        ann = (template.get("metadata") or {}).get("annotations") or {}
        side_cpu, side_mem, source = 0, 0.0, f"{obj['kind']} {ns}/{name}"
        if str(ann.get("dapr.io/enabled", "")).lower() == "true":
            s_cpu = ann.get("dapr.io/sidecar-cpu-request", ann.get("dapr.io/sidecar-cpu-limit"))
            s_mem = ann.get("dapr.io/sidecar-memory-request", ann.get("dapr.io/sidecar-memory-limit"))
            side_cpu = cpu_millis(s_cpu) if s_cpu else fallback[0]
            side_mem = mem_mib(s_mem) if s_mem else fallback[1]
            source += " + daprd (" + ("dapr.io/sidecar-* annotations" if s_cpu or s_mem else f"LimitRange default in {ns}") + ")"
        if obj["kind"] == "DaemonSet":
            pods.append(Pod("apps", name, ns, cpu + side_cpu, mem + side_mem, source, per_node=True,
                            sidecar_cpu_m=side_cpu, sidecar_mem_mib=side_mem))
            continue
        low, high = _scale(objs, obj["kind"], name, ns, int(obj["spec"].get("replicas", 1)))
        pods.append(Pod("apps", name, ns, cpu + side_cpu, mem + side_mem, source, low, high,
                        _surge(obj, high if high is not None else low), sidecar_cpu_m=side_cpu, sidecar_mem_mib=side_mem))
    return pods


def strimzi_pods(objs: list[dict[str, Any]]) -> list[Pod]:
    """Kafka nodes (per KafkaNodePool), entity operator, Kafka Exporter and Cruise Control of each Kafka."""
    defaults = limitrange_defaults(objs)
    pods: list[Pod] = []
    for kafka in select(objs, "Kafka"):
        ns, cluster = kafka["metadata"].get("namespace", "default"), kafka["metadata"]["name"]
        fallback = defaults.get(ns, (0, 0.0))
        spec = kafka["spec"]
        for pool in select(objs, "KafkaNodePool", ns):
            if (pool["metadata"].get("labels") or {}).get("strimzi.io/cluster") != cluster:
                continue
            cpu, mem = _requests(pool["spec"].get("resources") or spec["kafka"].get("resources"), fallback)
            name = f"{cluster}-{pool['metadata']['name']}"
            pods.append(Pod("strimzi", name, ns, cpu, mem, f"KafkaNodePool {ns}/{name}", int(pool["spec"]["replicas"])))
        eo = spec.get("entityOperator")
        if eo is not None:
            cpu, mem = 0, 0.0
            for part in ("topicOperator", "userOperator"):
                if part in eo:
                    c, m = _requests((eo[part] or {}).get("resources"), fallback)
                    cpu, mem = cpu + c, mem + m
            pods.append(Pod("strimzi", f"{cluster}-entity-operator", ns, cpu, mem, f"Kafka {ns}/{cluster}"))
        for part, suffix in (("kafkaExporter", "kafka-exporter"), ("cruiseControl", "cruise-control")):
            if part in spec:
                c, m = _requests((spec[part] or {}).get("resources"), fallback)
                pods.append(Pod("strimzi", f"{cluster}-{suffix}", ns, c, m, f"Kafka {ns}/{cluster}"))
    return pods


def postgres_pods(objs: list[dict[str, Any]]) -> list[Pod]:
    """Each CloudNativePG Cluster's instances (barman-cloud runs inside the PostgreSQL container)."""
    defaults = limitrange_defaults(objs)
    pods: list[Pod] = []
    for cluster in select(objs, "Cluster"):
        if not str(cluster.get("apiVersion", "")).startswith("postgresql.cnpg.io/"):
            continue
        ns, name = cluster["metadata"].get("namespace", "default"), cluster["metadata"]["name"]
        cpu, mem = _requests(cluster["spec"].get("resources"), defaults.get(ns, (0, 0.0)))
        pods.append(Pod("postgres", name, ns, cpu, mem, f"Cluster {ns}/{name}", int(cluster["spec"].get("instances", 1))))
    return pods


def rendered_volumes(objs: list[dict[str, Any]]) -> list[Volume]:
    """Block volumes the rendered objects create: PVCs, claim templates, Strimzi and CloudNativePG storage."""
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
    for cluster in select(objs, "Cluster"):
        if not str(cluster.get("apiVersion", "")).startswith("postgresql.cnpg.io/"):
            continue
        ns, name = cluster["metadata"].get("namespace", "default"), cluster["metadata"]["name"]
        for part in ("storage", "walStorage"):
            size = (cluster["spec"].get(part) or {}).get("size")
            for i in range(int(cluster["spec"].get("instances", 1)) if size else 0):
                vols.append(Volume(f"{name}-{i + 1}{'-wal' if part == 'walStorage' else ''}", ns, storage_gib(size),
                                   f"Cluster {ns}/{name} {part}"))
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
    post_render_replicas: tuple[tuple[str, int], ...] = ()
    part_of: str | None = None  # a sidecar container: counted inside that workload's pod


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
    post_render_count: tuple[tuple[str, int], ...] = ()


_ONE_SCHEDULER = (("single-scheduler", 1),)

HELM_WORKLOADS: dict[str, tuple[HelmWorkload, ...]] = {
    "metrics-server": (HelmWorkload("metrics-server", "resources", "replicas"),),
    "kube-prometheus-stack": (
        HelmWorkload("prometheus", "prometheus.prometheusSpec.resources", "prometheus.prometheusSpec.replicas"),
        HelmWorkload("config-reloader", "prometheusOperator.prometheusConfigReloader.resources", part_of="prometheus"),
        HelmWorkload("alertmanager", "alertmanager.alertmanagerSpec.resources", "alertmanager.alertmanagerSpec.replicas",
                     enabled="alertmanager.enabled"),
        HelmWorkload("config-reloader", "prometheusOperator.prometheusConfigReloader.resources", part_of="alertmanager",
                     enabled="alertmanager.enabled"),
        HelmWorkload("prometheus-operator", "prometheusOperator.resources"),
        HelmWorkload("grafana", "grafana.resources", "grafana.replicas", enabled="grafana.enabled"),
        HelmWorkload("dashboards sidecar", "grafana.sidecar.resources", part_of="grafana", enabled="grafana.enabled"),
        HelmWorkload("datasources sidecar", "grafana.sidecar.resources", part_of="grafana", enabled="grafana.enabled"),
        HelmWorkload("kube-state-metrics", "kube-state-metrics.resources", "kube-state-metrics.replicas"),
        HelmWorkload("node-exporter", "prometheus-node-exporter.resources", per_node=True, enabled="nodeExporter.enabled"),
    ),
    "cert-manager": (
        HelmWorkload("cert-manager", "resources", "replicaCount"),
        HelmWorkload("cert-manager-webhook", "webhook.resources", "webhook.replicaCount"),
        HelmWorkload("cert-manager-cainjector", "cainjector.resources", "cainjector.replicaCount", enabled="cainjector.enabled"),
    ),
    "nginx-ingress": (HelmWorkload("nginx-ingress-controller", "controller.resources", "controller.replicaCount"),),
    "strimzi-kafka-operator": (HelmWorkload("strimzi-cluster-operator", "resources", "replicas"),),
    "dapr": (
        HelmWorkload("dapr-operator", "dapr_operator.resources", "dapr_operator.replicaCount"),
        HelmWorkload("dapr-sentry", "dapr_sentry.resources", "dapr_sentry.replicaCount"),
        HelmWorkload("dapr-sidecar-injector", "dapr_sidecar_injector.resources", "dapr_sidecar_injector.replicaCount"),
        # The chart hard-codes three scheduler replicas; the single-scheduler post-render makes it one.
        HelmWorkload("dapr-scheduler-server", "dapr_scheduler.resources", fixed_replicas=3, enabled="global.scheduler.enabled",
                     post_render_replicas=_ONE_SCHEDULER),
        HelmWorkload("dapr-placement-server", "dapr_placement.resources", fixed_replicas=1, enabled="global.actors.enabled"),
    ),
    "keda": (
        HelmWorkload("keda-operator", "resources.operator", "operator.replicaCount"),
        HelmWorkload("keda-operator-metrics-apiserver", "resources.metricServer", "metricsServer.replicaCount"),
        HelmWorkload("keda-admission-webhooks", "resources.webhooks", "webhooks.replicaCount"),
    ),
    "cloudnative-pg": (HelmWorkload("cnpg-controller-manager", "resources", "replicaCount"),),
    "loki": (HelmWorkload("loki", "singleBinary.resources", "singleBinary.replicas"),),
    "fluent-bit": (HelmWorkload("fluent-bit", "resources", per_node=True),),
}

HELM_VOLUMES: dict[str, tuple[HelmVolume, ...]] = {
    "dapr": (HelmVolume("dapr-scheduler-data-dir", "dapr_scheduler.cluster.storageSize", "16Gi", count=3,
                        enabled="global.scheduler.enabled", disabled_by="dapr_scheduler.cluster.inMemoryStorage",
                        post_render_count=_ONE_SCHEDULER),),
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
    post_render: str = ""


def read_releases(directory: Path = OPERATORS_DIR) -> list[Release]:
    """The pinned releases in install order."""
    path = directory / "versions.env"
    releases = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.strip().split("|")
        if len(parts) != 7:
            raise BudgetError(f"{path}: malformed line {line!r} (want 7 |-separated fields)")
        name, ns, repo, chart, version, envs, post_render = parts
        releases.append(Release(name, ns, repo, chart, version, tuple(e for e in envs.split(",") if e), post_render))
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


def _enabled(values: dict[str, Any], item: HelmWorkload | HelmVolume) -> bool:
    return not item.enabled or bool(_get(values, item.enabled, item.enabled_default))


def helm_pods(environment: str, directory: Path = OPERATORS_DIR) -> tuple[list[Pod], list[Volume]]:
    """The workloads and volumes of every release installed in `environment`, from its values."""
    pods: list[Pod] = []
    vols: list[Volume] = []
    for rel in read_releases(directory):
        if environment not in rel.environments:
            continue
        values = release_values(rel.name, environment, directory)
        source = f"{rel.name} {rel.version} values"
        for wl in HELM_WORKLOADS.get(rel.name, ()):
            if not _enabled(values, wl):
                continue
            cpu, mem = _requests(_get(values, wl.resources), (0, 0.0))
            if wl.part_of:
                owner = next(p for p in pods if p.name == wl.part_of and p.namespace == rel.namespace)
                owner.cpu_m, owner.mem_mib = owner.cpu_m + cpu, owner.mem_mib + mem
                owner.sidecar_cpu_m, owner.sidecar_mem_mib = owner.sidecar_cpu_m + cpu, owner.sidecar_mem_mib + mem
                owner.source += f" + {wl.name}"
                continue
            if wl.per_node:
                pods.append(Pod("operators", wl.name, rel.namespace, cpu, mem, source, per_node=True))
                continue
            replicas = dict(wl.post_render_replicas).get(rel.post_render, wl.fixed_replicas)
            if replicas is None:
                replicas = int(_get(values, wl.replicas, 1) if wl.replicas else 1)
            pods.append(Pod("operators", wl.name, rel.namespace, cpu, mem, source, replicas))
        for hv in HELM_VOLUMES.get(rel.name, ()):
            if not _enabled(values, hv) or (hv.disabled_by and _get(values, hv.disabled_by, False)):
                continue
            count = dict(hv.post_render_count).get(rel.post_render, hv.count)
            size = storage_gib(_get(values, hv.size, hv.size_default))
            vols += [Volume(f"{hv.name}-{i}" if count > 1 else hv.name, rel.namespace, size, source) for i in range(count)]
    return pods, vols


def unset_helm_requests(environment: str, directory: Path = OPERATORS_DIR) -> list[str]:
    """Helm workloads whose values set no CPU or memory request (the budget would count them as zero)."""
    missing = []
    for rel in read_releases(directory):
        if environment not in rel.environments:
            continue
        values = release_values(rel.name, environment, directory)
        for wl in HELM_WORKLOADS.get(rel.name, ()):
            if not _enabled(values, wl):
                continue
            req = (_get(values, wl.resources) or {}).get("requests") or {}
            if "cpu" not in req or "memory" not in req:
                missing.append(f"{rel.name}: {wl.name} ({wl.resources}.requests)")
    return missing


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a shell settings file (comments and blank lines skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def system_pods(environment: str, directory: Path = OPERATORS_DIR) -> list[Pod]:
    """What OKE runs in kube-system (oke-system.yaml) and, on OKE, Calico with the requests install.sh sets."""
    path = directory / "oke-system.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    pods = []
    for wl in data.get("workloads", []):
        cpu, mem = _requests({"requests": wl.get("requests")}, (0, 0.0))
        pods.append(Pod("oke-system", wl["name"], "kube-system", cpu, mem, path.name,
                        int(wl.get("replicas", 1)), per_node=bool(wl.get("per_node"))))
    if environment == "prod":
        calico = read_env_file(directory / "calico" / "settings.env")
        source = f"calico {calico['CALICO_VERSION']} (calico/settings.env)"
        pods.append(Pod("oke-system", "calico-node", "kube-system", cpu_millis(calico["CALICO_NODE_CPU_REQUEST"]),
                        mem_mib(calico["CALICO_NODE_MEMORY_REQUEST"]), source, per_node=True))
        # calico-kube-controllers and calico-typha ask for nothing in the upstream manifest.
        pods += [Pod("oke-system", name, "kube-system", 0, 0.0, source) for name in ("calico-kube-controllers", "calico-typha")]
    return pods


def compute(
    objs: list[dict[str, Any]],
    *,
    overlay: str,
    spec: ClusterSpec,
    environment: str | None = None,
    operators_dir: Path = OPERATORS_DIR,
) -> Budget:
    """The whole budget of one rendered overlay plus its operators, on the node pool of `spec`."""
    env = environment or ("prod" if overlay.startswith("prod") else overlay)
    budget = Budget(overlay=overlay, spec=spec, reserved=node_reserved(spec.node_pool, operators_dir / "oke-system.yaml"))
    budget.pods += workload_pods(objs) + strimzi_pods(objs) + postgres_pods(objs)
    helm, helm_vols = helm_pods(env, operators_dir)
    budget.pods += helm + system_pods(env, operators_dir)
    budget.volumes += rendered_volumes(objs) + helm_vols
    return budget


# ----------------------------------------------------------------------------- report

def _verdict(ok: bool) -> str:
    return "fits" if ok else "DOES NOT FIT"


def format_report(budget: Budget, pods: Iterable[Pod] | None = None) -> str:
    """A plain-text report: one row per kind of pod, group subtotals, each moment against the allocatable."""
    pool, spec = budget.pool, budget.spec
    out = [f"Always Free budget: overlay {budget.overlay}"]
    origin = ("no --cluster-spec: the provisioning's Always Free example, provisioning/clusters/always-free.yaml"
              if spec.from_defaults else spec.source)
    out.append(f"Node pool: {pool.size} x {pool.shape}, {pool.ocpus_per_node:g} OCPU / {pool.memory_gb_per_node:g} GB, "
               f"{pool.boot_volume_gb} GB boot volume each ({origin})")
    if not budget.always_free_pool:
        out.append(f"  DOES NOT FIT: Always Free is {FREE_OCPUS} OCPU and {FREE_MEMORY_GB} GB of {FREE_A1_SHAPE} in total")
    out.append(f"Allocatable per node: {budget.allocatable_cpu_m_per_node}m CPU, "
               f"{budget.allocatable_mem_mib_per_node / 1024:.2f} GiB (capacity {pool.cpu_m_per_node}m / "
               f"{pool.memory_mib_per_node / 1024:.2f} GiB minus kube-reserved and eviction: "
               f"{budget.reserved.cpu_m}m / {budget.reserved.mem_mib:.0f} MiB)")
    out.append("")
    header = (f"{'group':<11} {'pod':<42} {'namespace':<13} {'min':>3} {'max':>3} {'+surge':>6} "
              f"{'cpu/pod':>7} {'mem/pod':>7}")
    out += [header, "-" * len(header)]
    for pod in list(pods if pods is not None else budget.pods):
        name = pod.name + (f" + {SIDECAR}" if pod.sidecar_cpu_m and pod.group == "apps" else
                           " + sidecars" if pod.sidecar_cpu_m else "")
        low = "node" if pod.per_node else str(pod.min_replicas)
        high = "" if pod.per_node or pod.max_replicas is None else str(pod.max_replicas)
        surge = f"+{pod.surge}" if pod.surge else ""
        out.append(f"{pod.group:<11} {name[:42]:<42} {pod.namespace[:13]:<13} {low:>3} {high:>3} {surge:>6} "
                   f"{pod.cpu_m:>6}m {pod.mem_mib:>5.0f}Mi")
    out.append("-" * len(header))
    out.append(f"{'subtotals':<11} {'':<42} {'':<13} {'CPU at min / max / rollout (m)':>32}")
    groups = {scale: budget.by_group(scale) for scale in Scale}
    for group in groups[Scale.MINIMUM]:
        cells = " / ".join(f"{groups[scale][group].cpu_m}" for scale in Scale)
        out.append(f"{'':<11} {group:<42} {'':<13} {cells:>32}")
    out.append("")
    out.append(f"{'':<26} {'CPU requests':>22}   {'memory requests':>22}   pods")
    for scale in Scale:
        used = budget.usage(scale)
        verdict = _verdict(budget.fits_at(scale))
        out.append(f"{scale.value:<26} {used.cpu_m:>5}m of {budget.allocatable_cpu_m:>5}m {100 * used.cpu_m / budget.allocatable_cpu_m:5.1f}%"
                   f"   {used.mem_mib / 1024:>5.2f} of {budget.allocatable_mem_mib / 1024:5.2f} GiB "
                   f"{100 * used.mem_mib / budget.allocatable_mem_mib:4.1f}%   {used.pods:>4}  {verdict}")
    missing = budget.unplaced(Scale.ROLLOUT)
    if missing:
        out.append(f"Placement during a rollout at maximum scale: DOES NOT FIT, no node has room for {', '.join(missing)}")
    else:
        out.append(f"Placement during a rollout at maximum scale: every pod finds a node ({budget.nodes} nodes, "
                   "DaemonSets on each, largest pods first)")
    out.append("")
    out.append(f"Block volumes (each at least {MIN_VOLUME_GB} GB on OKE):")
    out.append(f"  {'node boot volumes':<40} {'':<13} {budget.nodes} x {pool.boot_volume_gb} GB -> {budget.boot_volumes_gb} GB")
    for vol in budget.volumes:
        out.append(f"  {vol.name:<40} {vol.namespace:<13} asks {vol.requested_gib:>5.1f} GiB -> {vol.billed_gb} GB")
    out.append(f"Storage: {budget.storage_gb} GB of {CAPACITY_STORAGE_GB} GB  {_verdict(budget.fits_storage)}")
    out.append("")
    out.append("Result: " + ("fits the Always Free allowance" if budget.fits else "DOES NOT FIT the Always Free allowance"))
    return "\n".join(out)
