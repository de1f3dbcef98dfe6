"""The network the tool creates lets through what the Kustomize deployment needs (read from its manifests),
and the security rules OKE documents for flannel with a public API endpoint and private workers."""

from __future__ import annotations

import functools
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from console.manifests.render import render_overlay
from provisioning.model import Ref, tags
from provisioning.network import (
    ALL,
    ANYWHERE,
    ORACLE_SERVICES,
    TCP,
    SecurityRule,
    api_endpoint_rules,
    load_balancer_rules,
    private_routes,
    public_routes,
    workers_rules,
)
from provisioning.spec import load_cluster_spec

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO / "kustomize"
SPEC = load_cluster_spec()
NET = SPEC.network
WORKERS, API, LBS = str(NET.workers_subnet_cidr), str(NET.api_endpoint_subnet_cidr), str(NET.load_balancer_subnet_cidr)


def allows(rules: frozenset[SecurityRule], direction: str, peer: str, port: int | None, protocol: str = TCP) -> bool:
    """Whether some rule lets `protocol`/`port` through to or from the whole of `peer`."""
    for rule in rules:
        if rule.direction != direction or rule.protocol not in (protocol, ALL):
            continue
        if rule.peer == ORACLE_SERVICES or peer == ORACLE_SERVICES:
            if rule.peer != peer:
                continue
        elif not ipaddress.IPv4Network(peer).subnet_of(ipaddress.IPv4Network(rule.peer)):
            continue
        if rule.protocol == ALL or rule.ports is None or port is None or rule.ports[0] <= port <= rule.ports[1]:
            return True
    return False


@functools.cache
def policies() -> list[dict[str, Any]]:
    """The NetworkPolicies of the rendered prod overlay: what the cluster will actually enforce."""
    return [obj for obj in render_overlay("prod") if obj.get("kind") == "NetworkPolicy"]


def policy_ports(name: str, namespace: str, direction: str) -> set[int]:
    for policy in policies():
        if (policy["metadata"]["name"], policy["metadata"]["namespace"]) == (name, namespace):
            return {port["port"] for entry in policy["spec"].get(direction, []) for port in entry.get("ports", [])}
    raise AssertionError(f"no NetworkPolicy {namespace}/{name} in the prod overlay")


def test_pods_reach_the_kubernetes_api_endpoint() -> None:
    """The allow-kube-api policies open 6443, OKE's API endpoint: workers -> API endpoint subnet."""
    for namespace in ("todo-app", "kafka", "monitoring", "dapr-system"):
        assert 6443 in policy_ports("allow-kube-api", namespace, "egress")
    assert allows(workers_rules(SPEC), "egress", API, 6443)
    assert allows(api_endpoint_rules(SPEC), "ingress", WORKERS, 6443)
    assert allows(workers_rules(SPEC), "egress", API, 12250)
    assert allows(api_endpoint_rules(SPEC), "ingress", WORKERS, 12250)
    for cidr in NET.api_endpoint_allowed_cidrs:
        assert allows(api_endpoint_rules(SPEC), "ingress", str(cidr), 6443)


def test_the_control_plane_reaches_kubelets_and_webhooks() -> None:
    """Kubelet 10250, and the Dapr webhooks the allow-webhooks policy opens to the API server."""
    webhooks = policy_ports("allow-webhooks", "dapr-system", "ingress")
    assert webhooks == {4000, 19443}
    for port in (10250, *webhooks):
        assert allows(api_endpoint_rules(SPEC), "egress", WORKERS, port)
        assert allows(workers_rules(SPEC), "ingress", API, port)


def test_the_load_balancer_reaches_the_ingress_controller() -> None:
    """The ingress controller's LoadBalancer Service: 80/443 in, NodePorts and kube-proxy's health check out."""
    values = yaml.safe_load((KUSTOMIZE / "operators" / "nginx-ingress" / "values.yaml").read_text())
    service = values["controller"]["service"]
    assert service["type"] == "LoadBalancer"
    annotations = service["annotations"]
    assert annotations["service.beta.kubernetes.io/oci-load-balancer-shape"] == "flexible"
    assert int(annotations["service.beta.kubernetes.io/oci-load-balancer-shape-flex-max"]) == \
        SPEC.load_balancer.bandwidth_mbps
    # The security lists are the provisioning's alone, and the load balancer carries its ownership tags.
    assert annotations["service.beta.kubernetes.io/oci-load-balancer-security-list-management-mode"] == "None"
    assert json.loads(annotations["oci.oraclecloud.com/initial-freeform-tags-override"]) == \
        tags(SPEC.name, "ingress-load-balancer")
    for port in (80, 443):
        assert allows(load_balancer_rules(SPEC), "ingress", ANYWHERE, port)
    for port in (30000, 31234, 32767, 10256):
        assert allows(load_balancer_rules(SPEC), "egress", WORKERS, port)
        assert allows(workers_rules(SPEC), "ingress", LBS, port)
    assert not allows(workers_rules(SPEC), "ingress", ANYWHERE, 30000), "NodePorts are open to the LB subnet only"


def test_pods_reach_what_their_policies_allow_outside() -> None:
    """PostgreSQL (5432, allow-postgres) and HTTPS (JWKS, webhooks) through the NAT gateway; OCIR via the
    service gateway."""
    assert 5432 in policy_ports("allow-postgres", "todo-app", "egress")
    assert 443 in policy_ports("allow-https-egress", "todo-app", "egress")
    for port in (5432, 443):
        assert allows(workers_rules(SPEC), "egress", ANYWHERE, port)
    assert allows(workers_rules(SPEC), "egress", ORACLE_SERVICES, 443)
    assert {(r.destination, r.target) for r in private_routes()} == {
        (ANYWHERE, Ref("nat-gateway")), (ORACLE_SERVICES, Ref("service-gateway"))}
    assert {(r.destination, r.target) for r in public_routes()} == {(ANYWHERE, Ref("internet-gateway"))}


@pytest.mark.parametrize(("rules", "peer"), [(api_endpoint_rules, WORKERS), (workers_rules, API)])
def test_path_mtu_discovery_is_allowed(rules: Any, peer: str) -> None:
    icmp = [r for r in rules(SPEC) if r.protocol == "1"]
    assert any(r.icmp == (3, 4) and r.direction == "ingress" for r in icmp)
    assert any(r.icmp == (3, 4) and r.direction == "egress" for r in icmp)


def test_nothing_else_is_open_to_the_internet() -> None:
    exposed = {(r.ports, r.protocol) for rules in (api_endpoint_rules, workers_rules, load_balancer_rules)
               for r in rules(SPEC) if r.direction == "ingress" and r.peer == ANYWHERE}
    assert exposed == {((80, 80), TCP), ((443, 443), TCP), (None, "1"), ((6443, 6443), TCP)}
