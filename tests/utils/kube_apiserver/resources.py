"""The resource types the stand-in serves, and the discovery documents that announce them.

Each entry is what the real API server knows about a resource: its group/version, kind, plural, whether
it is namespaced, which field selectors it accepts beyond metadata.name/metadata.namespace (the real
server refuses any other with 400 "field label not supported"), and whether PATCH accepts strategic merge
(built-in kinds only; CRDs answer 415). Every kind in the rendered prod overlay must be here: loading an
unknown kind fails loudly instead of silently serving nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    fields: frozenset[str] = field(default_factory=frozenset)
    builtin: bool = True
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """How the API server names the resource in messages: `deployments.apps`, `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def selectable(self, name: str) -> bool:
        return name in ("metadata.name", "metadata.namespace") or name in self.fields


_POD_FIELDS = frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                         "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"})
_EVENT_FIELDS = frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                           "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                           "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"})


def _crd(group: str, version: str, kind: str, plural: str, *, namespaced: bool = True,
         short: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType(group, version, kind, plural, namespaced, builtin=False, short_names=short)


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", namespaced=False, fields=frozenset({"status.phase"})),
    ResourceType("", "v1", "Pod", "pods", fields=_POD_FIELDS, short_names=("po",)),
    ResourceType("", "v1", "Event", "events", fields=_EVENT_FIELDS, short_names=("ev",)),
    ResourceType("", "v1", "Service", "services", short_names=("svc",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    ResourceType("", "v1", "LimitRange", "limitranges"),
    ResourceType("", "v1", "ResourceQuota", "resourcequotas"),
    ResourceType("apps", "v1", "Deployment", "deployments", short_names=("deploy",)),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", fields=frozenset({"status.replicas"}), short_names=("rs",)),
    ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",)),
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses"),
    ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    ResourceType("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies",
                 namespaced=False),
    ResourceType("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
                 "validatingadmissionpolicybindings", namespaced=False),
    _crd("kafka.strimzi.io", "v1", "Kafka", "kafkas", short=("k",)),
    _crd("kafka.strimzi.io", "v1", "KafkaNodePool", "kafkanodepools", short=("knp",)),
    _crd("kafka.strimzi.io", "v1", "KafkaTopic", "kafkatopics", short=("kt",)),
    _crd("dapr.io", "v1alpha1", "Component", "components"),
    _crd("dapr.io", "v1alpha1", "Configuration", "configurations"),
    _crd("dapr.io", "v1alpha1", "Resiliency", "resiliencies"),
    _crd("dapr.io", "v2alpha1", "Subscription", "subscriptions"),
    _crd("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", short=("so",)),
    _crd("cert-manager.io", "v1", "Certificate", "certificates", short=("cert",)),
    _crd("cert-manager.io", "v1", "ClusterIssuer", "clusterissuers", namespaced=False),
    _crd("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors"),
    _crd("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules"),
    _crd("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"),
    _crd("postgresql.cnpg.io", "v1", "Cluster", "clusters"),
    _crd("postgresql.cnpg.io", "v1", "Database", "databases"),
    _crd("postgresql.cnpg.io", "v1", "ScheduledBackup", "scheduledbackups"),
    _crd("k8s.nginx.org", "v1", "VirtualServer", "virtualservers", short=("vs",)),
)

BY_PATH: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCE_TYPES}
BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCE_TYPES}


def resource_for(obj: dict[str, Any]) -> ResourceType:
    try:
        return BY_KIND[(str(obj.get("apiVersion")), str(obj.get("kind")))]
    except KeyError:
        raise KeyError(f"the stand-in does not serve {obj.get('apiVersion')} {obj.get('kind')}: "
                       "add it to tests/utils/kube_apiserver/resources.py") from None


# --- discovery (legacy documents: /api, /apis, /api/v1, /apis/<group>/<version>) ----------------------


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}


def api_group_list() -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for r in RESOURCE_TYPES:
        if r.group and r.version not in groups.setdefault(r.group, []):
            groups[r.group].append(r.version)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
         "preferredVersion": {"groupVersion": f"{g}/{vs[-1]}", "version": vs[-1]}}
        for g, vs in groups.items()]}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    found = [r for r in RESOURCE_TYPES if r.group == group and r.version == version]
    if not found:
        return None
    verbs = ["get", "list", "watch", "patch", "delete"]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": found[0].api_version,
            "resources": [{"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                           "kind": r.kind, "verbs": verbs, "shortNames": list(r.short_names)} for r in found]}
