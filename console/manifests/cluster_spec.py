"""The parts of the OKE cluster spec (provisioning/clusters/*.yaml) the manifests depend on.

The budget needs the node pool (how many nodes, their shape and size, their boot volumes) and the preflight
needs the API endpoint subnet (the kube-api NetworkPolicies allow exactly that) and the CNI (Calico runs in
policy-only mode on flannel). The spec file is the provisioning's, so it is read and validated by the
provisioning's own loader (one parser, one set of error messages); this module keeps only the view the
manifests need. Without a file the provisioning's Always Free example is the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provisioning import DEFAULT_SPEC as DEFAULT_SPEC_PATH
from provisioning import spec as provisioning_spec

# OCI counts Ampere A1 OCPUs as one vCPU each; the x86 shapes count two.
VCPUS_PER_OCPU = {"VM.Standard.A1.Flex": 1}


class ClusterSpecError(Exception):
    """The cluster spec file is unreadable or invalid; the message names the file and the fields."""


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
        """True when no --cluster-spec was given and the provisioning's Always Free example stands in."""
        return Path(self.source) == DEFAULT_SPEC_PATH


def load_cluster_spec(path: Path | None = None) -> ClusterSpec:
    """The spec at ``path`` (default: the provisioning's Always Free example), validated by the provisioning."""
    path = path or DEFAULT_SPEC_PATH
    try:
        full = provisioning_spec.load_cluster_spec(path)
    except provisioning_spec.SpecError as exc:
        raise ClusterSpecError(str(exc)) from None
    pool = full.node_pool
    return ClusterSpec(
        node_pool=NodePool(shape=pool.shape, size=pool.size, ocpus_per_node=float(pool.ocpus_per_node),
                           memory_gb_per_node=float(pool.memory_gb_per_node), boot_volume_gb=pool.boot_volume_gb),
        api_endpoint_subnet_cidr=str(full.network.api_endpoint_subnet_cidr),
        cni=full.cluster.cni,
        source=str(path),
    )


# The provisioning's Always Free example: what the budget and the preflight assume without --cluster-spec.
DEFAULT_SPEC = load_cluster_spec()
