"""The security and route rules of the three subnets, as plain data.

The layout is OKE's documented example for flannel with a public API endpoint, private workers and public
load balancers (the one terraform-oci-oke builds), narrowed to what this deployment uses. Every rule says
why it exists; provisioning/README.md cites them against the Kustomize deployment and its NetworkPolicies.

The ingress controller's Service is annotated so that OKE's cloud controller does *not* edit security lists
(`oci-load-balancer-security-list-management-mode: None`): the NodePort range and the health-check port are
open here once, statically, so a plan never sees rules it did not write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provisioning.model import Ref
from provisioning.spec import ClusterSpec

# Stands for the region's "All <region> Services In Oracle Services Network" CIDR label (the service
# gateway's destination); the OCI client maps it to the region's real label and back.
ORACLE_SERVICES = "oracle-services-network"
ANYWHERE = "0.0.0.0/0"

TCP, UDP, ICMP, ALL = "6", "17", "1", "all"

KUBE_API_PORT = 6443  # Kubernetes API on the cluster endpoint
OKE_PROXYMUX_PORT = 12250  # workers -> control plane (OKE's proxymux)
KUBELET_PORT = 10250  # control plane -> kubelet (logs, exec, metrics)
NODEPORTS = (30000, 32767)  # load balancer -> the ingress controller's NodePorts
KUBE_PROXY_HEALTH_PORT = 10256  # load balancer health checks (kube-proxy /healthz)
HTTP_PORT, HTTPS_PORT = 80, 443
# ICMP type 3 code 4, "fragmentation needed": path MTU discovery breaks without it.
PATH_DISCOVERY = (3, 4)


@dataclass(frozen=True)
class SecurityRule:
    """One stateful security list rule; `peer` is the source (ingress) or destination (egress)."""

    direction: Literal["ingress", "egress"]
    protocol: str
    peer: str
    ports: tuple[int, int] | None = None  # TCP/UDP destination port range
    icmp: tuple[int, int | None] | None = None  # ICMP type and code
    description: str = ""
    stateless: bool = False  # every rule here is stateful; a stateless one found in OCI is drift


@dataclass(frozen=True)
class RouteRule:
    destination: str  # a CIDR or ORACLE_SERVICES
    target: Ref | str | None  # the gateway: a Ref in the spec, its OCID once resolved or observed


def _tcp(direction: Literal["ingress", "egress"], peer: str, ports: tuple[int, int], why: str) -> SecurityRule:
    return SecurityRule(direction, TCP, peer, ports=ports, description=why)


def _path_discovery(direction: Literal["ingress", "egress"], peer: str) -> SecurityRule:
    return SecurityRule(direction, ICMP, peer, icmp=PATH_DISCOVERY, description="path MTU discovery")


def api_endpoint_rules(spec: ClusterSpec) -> frozenset[SecurityRule]:
    """The public subnet holding the Kubernetes API endpoint."""
    workers = str(spec.network.workers_subnet_cidr)
    rules = {
        _tcp("ingress", str(cidr), (KUBE_API_PORT, KUBE_API_PORT), "kubectl and CI to the Kubernetes API")
        for cidr in spec.network.api_endpoint_allowed_cidrs
    }
    rules |= {
        _tcp("ingress", workers, (KUBE_API_PORT, KUBE_API_PORT), "kubelets and pods to the Kubernetes API"),
        _tcp("ingress", workers, (OKE_PROXYMUX_PORT, OKE_PROXYMUX_PORT), "workers to the control plane (proxymux)"),
        _path_discovery("ingress", workers),
        _tcp("egress", ORACLE_SERVICES, (HTTPS_PORT, HTTPS_PORT), "control plane to OKE's own services"),
        _path_discovery("egress", ORACLE_SERVICES),
        # The API server calls kubelets (10250) and admission/conversion webhooks on pod ports (Dapr's
        # injector 4000 and operator 19443): all TCP to the workers, as OKE documents.
        SecurityRule("egress", TCP, workers, description="control plane to kubelets (10250) and webhooks"),
        _path_discovery("egress", workers),
    }
    return frozenset(rules)


def workers_rules(spec: ClusterSpec) -> frozenset[SecurityRule]:
    """The private subnet of the worker nodes (pods live on flannel's overlay inside it)."""
    net = spec.network
    workers, api, lbs = str(net.workers_subnet_cidr), str(net.api_endpoint_subnet_cidr), str(net.load_balancer_subnet_cidr)
    return frozenset({
        SecurityRule("ingress", ALL, workers, description="node to node and pod to pod (flannel VXLAN)"),
        SecurityRule("ingress", TCP, api, description="control plane to kubelets (10250) and webhooks"),
        _tcp("ingress", lbs, NODEPORTS, "load balancer to the ingress controller's NodePorts"),
        _tcp("ingress", lbs, (KUBE_PROXY_HEALTH_PORT, KUBE_PROXY_HEALTH_PORT), "load balancer health checks"),
        _path_discovery("ingress", ANYWHERE),
        SecurityRule("egress", ALL, workers, description="node to node and pod to pod (flannel VXLAN)"),
        _tcp("egress", api, (KUBE_API_PORT, KUBE_API_PORT), "kubelets and pods to the Kubernetes API"),
        _tcp("egress", api, (OKE_PROXYMUX_PORT, OKE_PROXYMUX_PORT), "workers to the control plane (proxymux)"),
        _path_discovery("egress", api),
        SecurityRule("egress", TCP, ORACLE_SERVICES, description="OCIR images, Object Storage, OKE services"),
        # Through the NAT gateway: images from public registries, the identity provider's JWKS (443), the
        # external PostgreSQL (5432), the notification webhook. The NetworkPolicies narrow it per pod.
        SecurityRule("egress", ALL, ANYWHERE, description="internet through the NAT gateway"),
    })


def load_balancer_rules(spec: ClusterSpec) -> frozenset[SecurityRule]:
    """The public subnet where OKE places the ingress controller's load balancer."""
    workers = str(spec.network.workers_subnet_cidr)
    return frozenset({
        _tcp("ingress", ANYWHERE, (HTTPS_PORT, HTTPS_PORT), "HTTPS to the ingress controller"),
        _tcp("ingress", ANYWHERE, (HTTP_PORT, HTTP_PORT), "HTTP, redirected to HTTPS by the ingress controller"),
        _tcp("egress", workers, NODEPORTS, "load balancer to the ingress controller's NodePorts"),
        _tcp("egress", workers, (KUBE_PROXY_HEALTH_PORT, KUBE_PROXY_HEALTH_PORT), "load balancer health checks"),
    })


def public_routes() -> frozenset[RouteRule]:
    return frozenset({RouteRule(ANYWHERE, Ref("internet-gateway"))})


def private_routes() -> frozenset[RouteRule]:
    """Workers have no public address: the internet through NAT, Oracle's services through the service gateway."""
    return frozenset({RouteRule(ANYWHERE, Ref("nat-gateway")), RouteRule(ORACLE_SERVICES, Ref("service-gateway"))})
