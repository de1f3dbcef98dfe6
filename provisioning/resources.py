"""What a cluster spec asks OCI for: fourteen resources, in the order they must be created.

Each resource has a key (its role: `subnet-workers`), which is also its `todo-platform-resource` tag and
the end of its display name (`todo-subnet-workers`). References between resources are `Ref(key)`, so the
list can be planned before any OCID exists.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from provisioning import network
from provisioning.model import Desired, Kind, Ref
from provisioning.spec import ClusterSpec

# Dependency order: every resource refers only to resources before it. Destroy walks it backwards.
ORDER: tuple[str, ...] = (
    "vcn",
    "internet-gateway",
    "nat-gateway",
    "service-gateway",
    "route-table-public",
    "route-table-private",
    "security-list-api-endpoint",
    "security-list-workers",
    "security-list-load-balancers",
    "subnet-api-endpoint",
    "subnet-workers",
    "subnet-load-balancers",
    "cluster",
    "node-pool",
)

# Kinds in dependency order, for resources whose key is unknown (destroy deletes them too).
KIND_ORDER: tuple[Kind, ...] = (
    Kind.VCN,
    Kind.INTERNET_GATEWAY,
    Kind.NAT_GATEWAY,
    Kind.SERVICE_GATEWAY,
    Kind.ROUTE_TABLE,
    Kind.SECURITY_LIST,
    Kind.SUBNET,
    # Made by the cluster's cloud controller in the load balancer subnet: destroy removes it after the
    # cluster (which would otherwise re-create it) and before the subnets (which it blocks).
    Kind.LOAD_BALANCER,
    Kind.CLUSTER,
    Kind.NODE_POOL,
)

# Attributes OCI lets us change in place; a difference anywhere else needs the resource re-created, which
# this tool refuses to do on its own (a new VCN or cluster is a new environment).
MUTABLE: dict[Kind, frozenset[str]] = {
    Kind.VCN: frozenset(),
    Kind.INTERNET_GATEWAY: frozenset({"is_enabled"}),
    Kind.NAT_GATEWAY: frozenset({"block_traffic"}),
    Kind.SERVICE_GATEWAY: frozenset({"services"}),
    Kind.ROUTE_TABLE: frozenset({"route_rules"}),
    Kind.SECURITY_LIST: frozenset({"security_rules"}),
    Kind.SUBNET: frozenset({"route_table_id", "security_list_ids"}),
    Kind.CLUSTER: frozenset({"kubernetes_version", "type"}),
    Kind.NODE_POOL: frozenset({
        "kubernetes_version", "node_shape", "ocpus", "memory_in_gbs", "size", "boot_volume_size_in_gbs",
        "ssh_public_key", "subnet_id", "image_id",
    }),
}

# Changes OCI accepts in one direction only.
UPGRADE_ONLY: dict[tuple[Kind, str], tuple[str, ...] | None] = {
    (Kind.CLUSTER, "kubernetes_version"): None,  # compare as versions
    (Kind.NODE_POOL, "kubernetes_version"): None,
    (Kind.CLUSTER, "type"): ("BASIC_CLUSTER", "ENHANCED_CLUSTER"),  # from first to second only
}


def display_name(spec: ClusterSpec, key: str) -> str:
    return f"{spec.name}-{key}"


def desired_resources(spec: ClusterSpec) -> list[Desired]:
    """Everything the spec asks for, in ORDER (each refers only to resources before it)."""
    net, cluster, pool = spec.network, spec.cluster, spec.node_pool

    def make(key: str, kind: Kind, **attrs: Any) -> Desired:
        return Desired(key, kind, display_name(spec, key), MappingProxyType(attrs))

    vcn = Ref("vcn")
    return [
        make("vcn", Kind.VCN, cidr_blocks=(str(net.vcn_cidr),), dns_label=spec.dns_label),
        make("internet-gateway", Kind.INTERNET_GATEWAY, vcn_id=vcn, is_enabled=True),
        make("nat-gateway", Kind.NAT_GATEWAY, vcn_id=vcn, block_traffic=False),
        make("service-gateway", Kind.SERVICE_GATEWAY, vcn_id=vcn, services=frozenset({network.ORACLE_SERVICES})),
        make("route-table-public", Kind.ROUTE_TABLE, vcn_id=vcn, route_rules=network.public_routes()),
        make("route-table-private", Kind.ROUTE_TABLE, vcn_id=vcn, route_rules=network.private_routes()),
        make("security-list-api-endpoint", Kind.SECURITY_LIST, vcn_id=vcn,
             security_rules=network.api_endpoint_rules(spec)),
        make("security-list-workers", Kind.SECURITY_LIST, vcn_id=vcn, security_rules=network.workers_rules(spec)),
        make("security-list-load-balancers", Kind.SECURITY_LIST, vcn_id=vcn,
             security_rules=network.load_balancer_rules(spec)),
        make("subnet-api-endpoint", Kind.SUBNET, vcn_id=vcn, cidr_block=str(net.api_endpoint_subnet_cidr),
             dns_label="api", public=True, route_table_id=Ref("route-table-public"),
             security_list_ids=frozenset({Ref("security-list-api-endpoint")})),
        make("subnet-workers", Kind.SUBNET, vcn_id=vcn, cidr_block=str(net.workers_subnet_cidr),
             dns_label="workers", public=False, route_table_id=Ref("route-table-private"),
             security_list_ids=frozenset({Ref("security-list-workers")})),
        make("subnet-load-balancers", Kind.SUBNET, vcn_id=vcn, cidr_block=str(net.load_balancer_subnet_cidr),
             dns_label="lb", public=True, route_table_id=Ref("route-table-public"),
             security_list_ids=frozenset({Ref("security-list-load-balancers")})),
        make("cluster", Kind.CLUSTER, vcn_id=vcn, kubernetes_version=cluster.kubernetes_version,
             type=cluster.type, cni=cluster.cni, endpoint_subnet_id=Ref("subnet-api-endpoint"),
             public_endpoint=True, service_lb_subnet_ids=(Ref("subnet-load-balancers"),),
             pods_cidr=str(net.pods_cidr), services_cidr=str(net.services_cidr)),
        make("node-pool", Kind.NODE_POOL, cluster_id=Ref("cluster"), kubernetes_version=cluster.kubernetes_version,
             node_shape=pool.shape, ocpus=pool.ocpus_per_node, memory_in_gbs=pool.memory_gb_per_node,
             size=pool.size, boot_volume_size_in_gbs=pool.boot_volume_gb, ssh_public_key=pool.ssh_public_key,
             subnet_id=Ref("subnet-workers"), cni=cluster.cni,
             **({"image_id": pool.image_id} if pool.image_id else {})),
    ]
