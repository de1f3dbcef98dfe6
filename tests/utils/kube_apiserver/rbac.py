"""Who is asking (bearer tokens) and may they (RBAC evaluated over the Roles and bindings being served).

Authorization reads the Role/RoleBinding/ClusterRole/ClusterRoleBinding objects in the store, so the
rendered overlay's own `console-viewer` Role decides what a ServiceAccount-token kubeconfig can do: the
console is tested against the permissions the project actually ships. `system:masters` may do anything,
as on a real cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.utils.kube_apiserver.resources import BY_KIND, ResourceType
from tests.utils.kube_apiserver.store import Store

_ROLE = BY_KIND[("rbac.authorization.k8s.io/v1", "Role")]
_ROLE_BINDING = BY_KIND[("rbac.authorization.k8s.io/v1", "RoleBinding")]
_CLUSTER_ROLE = BY_KIND[("rbac.authorization.k8s.io/v1", "ClusterRole")]
_CLUSTER_ROLE_BINDING = BY_KIND[("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")]


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = field(default=("system:authenticated",))

    @classmethod
    def service_account(cls, namespace: str, name: str) -> User:
        return cls(f"system:serviceaccount:{namespace}:{name}",
                   ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))

    @property
    def admin(self) -> bool:
        return "system:masters" in self.groups


ADMIN = User("kubernetes-admin", ("system:masters", "system:authenticated"))


def allowed(store: Store, user: User, verb: str, resource: ResourceType, namespace: str | None,
            name: str | None) -> bool:
    if user.admin:
        return True
    with store.cond:
        bindings = list(store.items(_CLUSTER_ROLE_BINDING))
        if namespace:
            bindings += list(store.items(_ROLE_BINDING, namespace))
        for binding in bindings:
            if not any(_subject_matches(s, user) for s in binding.get("subjects") or []):
                continue
            for rule in _rules(store, binding):
                if _rule_allows(rule, verb, resource, name):
                    return True
    return False


def _subject_matches(subject: dict[str, Any], user: User) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return user.name == f"system:serviceaccount:{subject.get('namespace')}:{name}"
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    return False


def _rules(store: Store, binding: dict[str, Any]) -> list[dict[str, Any]]:
    ref = binding.get("roleRef") or {}
    if ref.get("kind") == "ClusterRole":
        role = store.get(_CLUSTER_ROLE, "", ref.get("name", ""))
    else:
        role = store.get(_ROLE, binding["metadata"].get("namespace", ""), ref.get("name", ""))
    return (role or {}).get("rules") or []


def _rule_allows(rule: dict[str, Any], verb: str, resource: ResourceType, name: str | None) -> bool:
    def has(key: str, value: str) -> bool:
        values = rule.get(key) or []
        return "*" in values or value in values
    if not (has("apiGroups", resource.group) and has("resources", resource.plural) and has("verbs", verb)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


def forbidden_message(user: User, verb: str, resource: ResourceType, namespace: str | None, name: str | None) -> str:
    """The API server's exact sentence for a 403."""
    subject = f'{resource.group_resource} "{name}"' if name else resource.group_resource
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return (f'{subject} is forbidden: User "{user.name}" cannot {verb} resource "{resource.plural}" '
            f'in API group "{resource.group}"{where}')
