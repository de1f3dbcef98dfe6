"""The parts of the OKE cluster spec (provisioning/clusters/*.yaml) the manifests depend on.

The budget needs the node pool (how many nodes, their shape and size, their boot volumes) and the preflight
needs the API endpoint subnet (the kube-api NetworkPolicies allow exactly that) and the CNI (Calico runs in
policy-only mode on flannel). The spec file is the provisioning's; this module reads only those keys, with
plain YAML, and falls back to the same values as the provisioning's Always Free example when there is no
file, saying so (``ClusterSpec.source``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from console.manifests.render import REPO_ROOT

DEFAULT_SPEC_PATH = REPO_ROOT / "provisioning" / "clusters" / "always-free.yaml"
DEFAULTS_SOURCE = "defaults (no cluster spec file)"
# OCI counts Ampere A1 OCPUs as one vCPU each; the x86 shapes count two.
VCPUS_PER_OCPU = {"VM.Standard.A1.Flex": 1}


class ClusterSpecError(Exception):
    """The cluster spec file is missing a key or has a value of the wrong kind."""


@dataclass(frozen=True)
class NodePool:
    shape: str
    size: int
    ocpus_per_node: float
    memory_gb_per_node: float
    boot_volume_gb: int

    @property
    def cpu_m_per_node(self) -> int:
        return int(self.ocpus_per_node * VCPUS_PER_OCPU.get(self.shape, 2) * 1000)

    @property
    def memory_mib_per_node(self) -> float:
        return self.memory_gb_per_node * 1024


@dataclass(frozen=True)
class ClusterSpec:
    node_pool: NodePool
    api_endpoint_subnet_cidr: str
    cni: str
    source: str

    @property
    def from_defaults(self) -> bool:
        return self.source == DEFAULTS_SOURCE


DEFAULT_SPEC = ClusterSpec(
    node_pool=NodePool("VM.Standard.A1.Flex", size=2, ocpus_per_node=2, memory_gb_per_node=12, boot_volume_gb=50),
    api_endpoint_subnet_cidr="10.0.0.0/28",
    cni="FLANNEL_OVERLAY",
    source=DEFAULTS_SOURCE,
)


def _field(data: dict[str, Any], section: str, key: str, kind: type, path: Path) -> Any:
    block = data.get(section)
    if not isinstance(block, dict) or key not in block:
        raise ClusterSpecError(f"{path}: missing {section}.{key}")
    value = block[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ClusterSpecError(f"{path}: {section}.{key} must be a {kind.__name__}, got {value!r}")
    return value


def load_cluster_spec(path: Path | None = None) -> ClusterSpec:
    """The spec at ``path``; without a path, the default example if it exists, else the defaults."""
    if path is None:
        if not DEFAULT_SPEC_PATH.is_file():
            return DEFAULT_SPEC
        path = DEFAULT_SPEC_PATH
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ClusterSpecError(f"cannot read cluster spec {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ClusterSpecError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ClusterSpecError(f"{path}: expected a mapping with network, cluster and node_pool")
    pool = NodePool(
        shape=_field(data, "node_pool", "shape", str, path),
        size=_field(data, "node_pool", "size", int, path),
        ocpus_per_node=_field(data, "node_pool", "ocpus_per_node", float, path),
        memory_gb_per_node=_field(data, "node_pool", "memory_gb_per_node", float, path),
        boot_volume_gb=_field(data, "node_pool", "boot_volume_gb", int, path),
    )
    if pool.size < 1 or pool.ocpus_per_node <= 0 or pool.memory_gb_per_node <= 0 or pool.boot_volume_gb < 0:
        raise ClusterSpecError(f"{path}: node_pool needs at least one node with OCPUs and memory")
    return ClusterSpec(
        node_pool=pool,
        api_endpoint_subnet_cidr=_field(data, "network", "api_endpoint_subnet_cidr", str, path),
        cni=_field(data, "cluster", "cni", str, path),
        source=str(path),
    )
