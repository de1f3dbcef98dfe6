"""Which connections the rendered NetworkPolicies allow, by the Kubernetes NetworkPolicy semantics.

A pod is isolated for egress (ingress) when a policy of its namespace selects it with that policy type; an
isolated pod's connection needs a rule of one of those policies that matches the peer and the port. A
connection is allowed when the source may send it and the destination may receive it. Pods are described by
namespace and labels; addresses outside the pod network by IP (the API endpoint, the internet).

The bootstrap's verify step (kustomize/operators/verify.sh) probes paths on the live cluster; the tests
check the same paths here, so a policy change that would open a denied path fails before it is applied.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from console.manifests.render import select

# A pod address for ipBlock rules (OKE's default pods CIDR, provisioning spec network.pods_cidr).
DEFAULT_POD_ADDRESS = "10.244.0.10"


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (namespace + labels) or an address outside the pod network."""

    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector against a label set (an empty selector matches everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and key in labels and labels[key] in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def namespace_labels(objs: list[dict[str, Any]], namespace: str) -> dict[str, str]:
    """The labels a namespace carries: the automatic kubernetes.io/metadata.name, plus the rendered ones."""
    labels = {"kubernetes.io/metadata.name": namespace}
    for ns in select(objs, "Namespace"):
        if ns["metadata"]["name"] == namespace:
            labels.update(ns["metadata"].get("labels") or {})
    return labels


def _in_block(block: Mapping[str, Any], ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"], strict=False):
        return False
    return not any(address in ipaddress.ip_network(cidr, strict=False) for cidr in block.get("except") or [])


def _peer_matches(objs: list[dict[str, Any]], peer: Mapping[str, Any], policy_ns: str, other: Endpoint,
                  pod_address: str) -> bool:
    if "ipBlock" in peer:
        return _in_block(peer["ipBlock"], pod_address if other.namespace is not None else (other.ip or ""))
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not label_selector_matches(peer["namespaceSelector"], namespace_labels(objs, other.namespace)):
            return False
    elif other.namespace != policy_ns:
        return False
    return label_selector_matches(peer.get("podSelector"), other.labels)


def _port_matches(rule: Mapping[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for item in ports:
        if item.get("protocol", "TCP") != protocol:
            continue
        number = item.get("port")
        if number is None or (isinstance(number, int) and number <= port <= int(item.get("endPort", number))):
            return True
    return False


def _permits(objs: list[dict[str, Any]], namespace: str, pod: Endpoint, other: Endpoint, port: int, protocol: str,
             direction: str, pod_address: str) -> bool:
    """Whether the policies of `pod`'s namespace let the connection with `other` through in `direction`."""
    kind, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    isolating = [p for p in select(objs, "NetworkPolicy", namespace)
                 if direction in (p["spec"].get("policyTypes") or ["Ingress"])
                 and label_selector_matches(p["spec"].get("podSelector"), pod.labels)]
    if not isolating:
        return True
    for policy in isolating:
        for rule in policy["spec"].get(kind) or []:
            peers = rule.get(peers_key)
            if not _port_matches(rule, port, protocol):
                continue
            if not peers or any(_peer_matches(objs, peer, namespace, other, pod_address) for peer in peers):
                return True
    return False


def allowed(objs: list[dict[str, Any]], source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP",
            *, pod_address: str = DEFAULT_POD_ADDRESS) -> bool:
    """Whether the rendered policies let `source` open `port` on `destination`."""
    if source.namespace is not None and not _permits(objs, source.namespace, source, destination, port, protocol,
                                                     "Egress", pod_address):
        return False
    return destination.namespace is None or _permits(objs, destination.namespace, destination, source, port, protocol,
                                                     "Ingress", pod_address)
