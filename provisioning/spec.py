"""The cluster spec: one YAML file says what the network, the OKE cluster and its node pool should be.

Pure data, no OCI calls: the plan, the preflight and `todo-console budget` all read the same validated
`ClusterSpec`. Validation happens here, once, with messages that name the field (`network.workers_subnet_cidr:
...`), because a bad CIDR found by OCI halfway through an apply costs a VCN to clean up.

The Always Free allowance (Oracle's, as of 2026) is checked here too when `always_free: true` (the
default): Ampere A1 4 OCPU and 24 GB across all instances, 200 GB of block volume in all with every boot
volume counted at 50 GB at least, one flexible load balancer at 10 Mbps, and a basic cluster (enhanced
clusters are billed per hour).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from provisioning import DEFAULT_SPEC

A1_SHAPE = "VM.Standard.A1.Flex"
# FR-A08: Kafka needs at least this much per node.
MIN_NODE_OCPUS = 2
MIN_NODE_MEMORY_GB = 8
# OCI: flexible shapes take 1 to 64 GB of memory per OCPU; boot volumes are 50 GB to 32 TB.
MAX_MEMORY_GB_PER_OCPU = 64
MIN_BOOT_VOLUME_GB = 50
MAX_BOOT_VOLUME_GB = 32768

_SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( \S.*)?$")


@dataclass(frozen=True)
class AlwaysFreeAllowance:
    """What Oracle's Always Free tier gives a tenancy in its home region."""

    a1_ocpus: float = 4
    a1_memory_gb: float = 24
    block_volume_gb: int = 200
    min_volume_gb: int = 50  # every block or boot volume counts at least this much
    flexible_load_balancers: int = 1
    load_balancer_mbps: int = 10
    cluster_type: str = "BASIC_CLUSTER"


ALWAYS_FREE = AlwaysFreeAllowance()


class SpecError(ValueError):
    """A cluster spec that cannot be used; the message names the file and every bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkSpec(_Strict):
    """The VCN and its subnets by purpose (terraform-oci-oke's layout): a public subnet for the Kubernetes
    API endpoint, a private one for the workers, a public one for load balancers."""

    vcn_cidr: IPv4Network
    api_endpoint_subnet_cidr: IPv4Network
    workers_subnet_cidr: IPv4Network
    load_balancer_subnet_cidr: IPv4Network
    pods_cidr: IPv4Network
    services_cidr: IPv4Network
    # Who may reach the public Kubernetes API endpoint (6443). Narrow it to your office/CI ranges.
    api_endpoint_allowed_cidrs: tuple[IPv4Network, ...] = (IPv4Network("0.0.0.0/0"),)

    @field_validator("vcn_cidr")
    @classmethod
    def _vcn_is_a_slash_16(cls, value: IPv4Network) -> IPv4Network:
        if value.prefixlen != 16:
            raise ValueError(f"{value} must be a /16 (FR-A01 asks for at least /16; OCI allows at most /16)")
        return value

    @field_validator("api_endpoint_subnet_cidr", "workers_subnet_cidr", "load_balancer_subnet_cidr")
    @classmethod
    def _subnet_size(cls, value: IPv4Network) -> IPv4Network:
        if not 16 <= value.prefixlen <= 30:
            raise ValueError(f"{value}: OCI subnets are /16 to /30")
        return value

    @model_validator(mode="after")
    def _layout(self) -> Self:
        subnets = {
            "api_endpoint_subnet_cidr": self.api_endpoint_subnet_cidr,
            "workers_subnet_cidr": self.workers_subnet_cidr,
            "load_balancer_subnet_cidr": self.load_balancer_subnet_cidr,
        }
        for name, cidr in subnets.items():
            if not cidr.subnet_of(self.vcn_cidr):
                raise ValueError(f"network.{name}: {cidr} is not inside vcn_cidr {self.vcn_cidr}")
        names = list(subnets)
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                if subnets[first].overlaps(subnets[second]):
                    raise ValueError(f"network.{first} {subnets[first]} overlaps network.{second} {subnets[second]}")
        # Flannel's pod and service ranges are virtual: they must not collide with the VCN or each other,
        # or packets for a pod would be routed into the VCN instead.
        for name, cidr in (("pods_cidr", self.pods_cidr), ("services_cidr", self.services_cidr)):
            if cidr.overlaps(self.vcn_cidr):
                raise ValueError(f"network.{name}: {cidr} overlaps vcn_cidr {self.vcn_cidr}")
        if self.pods_cidr.overlaps(self.services_cidr):
            raise ValueError(f"network.pods_cidr {self.pods_cidr} overlaps network.services_cidr {self.services_cidr}")
        return self


class ClusterOptions(_Strict):
    kubernetes_version: str = Field(pattern=r"^v\d+\.\d+\.\d+$")
    type: Literal["BASIC_CLUSTER", "ENHANCED_CLUSTER"] = "BASIC_CLUSTER"
    # Flannel: pods get overlay addresses and the Calico policy engine (installed next to it) enforces
    # the NetworkPolicies. OKE's VCN-native CNI does not run Calico's policy-only mode.
    cni: Literal["FLANNEL_OVERLAY", "OCI_VCN_IP_NATIVE"] = "FLANNEL_OVERLAY"


class NodePoolSpec(_Strict):
    shape: str = Field(pattern=r"^VM\.[A-Za-z0-9.]+\.Flex$")
    ocpus_per_node: float = Field(gt=0)
    memory_gb_per_node: float = Field(gt=0)
    size: int = Field(ge=1, le=32)
    boot_volume_gb: int = Field(MIN_BOOT_VOLUME_GB, ge=MIN_BOOT_VOLUME_GB, le=MAX_BOOT_VOLUME_GB)
    # Workers sit in a private subnet; without a key nobody can SSH to them (reach them through the
    # OCI Bastion service if you need to).
    ssh_public_key: str | None = None
    # Pin a node image OCID; by default the newest OKE image for the version and the shape's CPU arch.
    image_id: str | None = Field(None, pattern=r"^ocid1\.image\.")

    @field_validator("ssh_public_key")
    @classmethod
    def _ssh_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not _SSH_KEY.match(value):
            raise ValueError("not an OpenSSH public key (expected 'ssh-ed25519 AAAA...' or 'ssh-rsa AAAA...')")
        return value

    @model_validator(mode="after")
    def _node_size(self) -> Self:
        if self.ocpus_per_node < MIN_NODE_OCPUS or self.memory_gb_per_node < MIN_NODE_MEMORY_GB:
            raise ValueError(
                f"node_pool: {self.ocpus_per_node:g} OCPU / {self.memory_gb_per_node:g} GB per node is below "
                f"FR-A08's minimum of {MIN_NODE_OCPUS} OCPU and {MIN_NODE_MEMORY_GB} GB per node"
            )
        if not self.ocpus_per_node <= self.memory_gb_per_node <= MAX_MEMORY_GB_PER_OCPU * self.ocpus_per_node:
            raise ValueError(
                f"node_pool.memory_gb_per_node: {self.memory_gb_per_node:g} GB for {self.ocpus_per_node:g} OCPU; "
                f"flexible shapes take 1 to {MAX_MEMORY_GB_PER_OCPU} GB per OCPU"
            )
        return self

    @property
    def arch(self) -> Literal["aarch64", "x86_64"]:
        """Ampere shapes (A1, A2, A4) are arm64: the node image and every container image must match."""
        return "aarch64" if re.match(r"^VM\.Standard\.A\d", self.shape) else "x86_64"


class LoadBalancerSpec(_Strict):
    """The load balancer the cluster will ask for (the ingress controller's Service), for the budget and
    the preflight; this tool does not create it, OKE's cloud controller does."""

    count: int = Field(1, ge=0)
    bandwidth_mbps: int = Field(10, ge=10, le=8000)


class ClusterSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
    region: str = Field(pattern=r"^[a-z]{2,}(-[a-z]+)+-\d+$")
    compartment_id: str = Field(pattern=r"^ocid1\.(compartment|tenancy)\.oc\d+\.\.[a-z0-9]+$")
    network: NetworkSpec
    cluster: ClusterOptions
    node_pool: NodePoolSpec
    load_balancer: LoadBalancerSpec = LoadBalancerSpec()
    always_free: bool = True

    @model_validator(mode="after")
    def _always_free(self) -> Self:
        if self.always_free:
            problems = always_free_problems(self)
            if problems:
                raise ValueError("; ".join(problems) + " (set always_free: false to provision beyond it)")
        return self

    @property
    def dns_label(self) -> str:
        """VCN DNS labels are letters and digits, 15 at most, starting with a letter."""
        return self.name.replace("-", "")[:15]


@dataclass(frozen=True)
class AlwaysFreeUsage:
    """What a spec consumes of the Always Free allowance (boot volumes at their billed minimum)."""

    a1_ocpus: float
    a1_memory_gb: float
    boot_volume_gb: int
    load_balancers: int
    load_balancer_mbps: int


def always_free_usage(spec: ClusterSpec) -> AlwaysFreeUsage:
    pool = spec.node_pool
    is_a1 = pool.shape == A1_SHAPE
    return AlwaysFreeUsage(
        a1_ocpus=pool.ocpus_per_node * pool.size if is_a1 else 0,
        a1_memory_gb=pool.memory_gb_per_node * pool.size if is_a1 else 0,
        boot_volume_gb=max(pool.boot_volume_gb, ALWAYS_FREE.min_volume_gb) * pool.size,
        load_balancers=spec.load_balancer.count,
        load_balancer_mbps=spec.load_balancer.bandwidth_mbps,
    )


def always_free_problems(spec: ClusterSpec, allowance: AlwaysFreeAllowance = ALWAYS_FREE) -> list[str]:
    """Every way the spec leaves the Always Free allowance, each naming the field and the limit."""
    pool = spec.node_pool
    usage = always_free_usage(spec)
    boot_each = max(pool.boot_volume_gb, allowance.min_volume_gb)
    over = [
        (usage.a1_ocpus > allowance.a1_ocpus,
         f"node_pool: {pool.size} nodes x {pool.ocpus_per_node:g} OCPU = {usage.a1_ocpus:g} OCPU is over the "
         f"Always Free Ampere A1 allowance of {allowance.a1_ocpus:g} OCPU in all"),
        (usage.a1_memory_gb > allowance.a1_memory_gb,
         f"node_pool: {pool.size} nodes x {pool.memory_gb_per_node:g} GB = {usage.a1_memory_gb:g} GB is over the "
         f"Always Free Ampere A1 allowance of {allowance.a1_memory_gb:g} GB of memory in all"),
        (usage.boot_volume_gb > allowance.block_volume_gb,
         f"node_pool: {pool.size} boot volumes x {boot_each} GB = {usage.boot_volume_gb} GB is over the Always Free "
         f"block volume allowance of {allowance.block_volume_gb} GB in all (boot volumes count, "
         f"{allowance.min_volume_gb} GB at least each)"),
        (usage.load_balancers > allowance.flexible_load_balancers,
         f"load_balancer.count: {usage.load_balancers} is over the Always Free allowance of "
         f"{allowance.flexible_load_balancers} flexible load balancer"),
        (usage.load_balancer_mbps > allowance.load_balancer_mbps,
         f"load_balancer.bandwidth_mbps: {usage.load_balancer_mbps} is over the Always Free flexible load "
         f"balancer's {allowance.load_balancer_mbps} Mbps"),
        (spec.cluster.type != allowance.cluster_type,
         f"cluster.type: {spec.cluster.type} is billed per hour; Always Free needs BASIC_CLUSTER"),
    ]
    problems = [f"node_pool.shape: {pool.shape} is not Always Free (only {A1_SHAPE} is)"] \
        if pool.shape != A1_SHAPE else []
    problems += [message for is_over, message in over if is_over]
    return problems


def parse_cluster_spec(data: Any, source: str = "cluster spec") -> ClusterSpec:
    """Validate already-parsed YAML; every problem in one line, each prefixed by its field path."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping of settings at the top level")
    try:
        return ClusterSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{source}: {format_errors(exc)}") from None


def load_cluster_spec(path: Path | str = DEFAULT_SPEC) -> ClusterSpec:
    """Read and validate a cluster spec file; raises SpecError naming the file and the fields."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the cluster spec: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    return parse_cluster_spec(data, str(path))


def format_errors(exc: ValidationError) -> str:
    """`network.vcn_cidr: ...; node_pool.size: ...`: field paths as they are written in the YAML."""
    parts = []
    for error in exc.errors():
        loc = ".".join(str(item) for item in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        elif error["type"] == "missing":
            message = "required"
        # Model-level checks already name their fields.
        parts.append(f"{loc}: {message}" if loc and not message.startswith(loc) else message)
    return "; ".join(parts)
