"""Which Secrets the app's ServiceAccount may read, from the Kubernetes RBAC objects beside the Dapr resources.

In the cluster daprd's Kubernetes secret store (components-contrib secretstores/kubernetes) calls the
API server with the pod's ServiceAccount: `get` for one secret, `list` for a bulk read. The API server
answers 403 unless a Role/ClusterRole bound to that account allows the verb on `secrets` (with
`resourceNames` limiting `get` to those names), and daprd passes the API server's text on:
`secrets "todo-db" is forbidden: User "system:serviceaccount:todo-app:worker" cannot get resource
"secrets" in API group "" in the namespace "todo-app"` (k8s.io/apiserver responsewriters
forbiddenMessage, apimachinery errors.NewForbidden). The RBAC check comes before the lookup, so a
missing secret the account may not read is forbidden, not "not found".

The app's ServiceAccount is the `serviceAccountName` of the Deployment (or StatefulSet) whose pod
template carries `dapr.io/app-id: <app-id>` ("default" without one). Subjects match by
ServiceAccount, by user name, or by the groups every ServiceAccount is in. When the resources hold
no RBAC object at all (a plain Dapr resources directory), nothing is enforced: there is no
cluster to speak for. Docs: https://kubernetes.io/docs/reference/access-authn-authz/rbac/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RBAC_KINDS = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
APP_ID_ANNOTATION = "dapr.io/app-id"
DISABLE_BUILTIN_STORE_ANNOTATION = "dapr.io/disable-builtin-k8s-secret-store"


class Forbidden(Exception):
    """The API server's 403 for this request, with its message."""


@dataclass(frozen=True)
class _Rule:
    verbs: frozenset[str]
    names: frozenset[str]  # empty: every name

    def allows(self, verb: str, name: str | None) -> bool:
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if not self.names:
            return True
        return name is not None and name in self.names  # a named rule never allows list


def _meta(doc: dict[str, Any], key: str, default: str = "") -> str:
    return str((doc.get("metadata") or {}).get(key) or default)


def _secret_rules(role: dict[str, Any]) -> list[_Rule]:
    """The role's rules that are about core-group `secrets`."""
    out = []
    for rule in role.get("rules") or []:
        groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
        if ("" in groups or "*" in groups) and ("secrets" in resources or "*" in resources):
            out.append(_Rule(frozenset(str(v) for v in rule.get("verbs") or []),
                             frozenset(str(n) for n in rule.get("resourceNames") or [])))
    return out


@dataclass(frozen=True)
class SecretAccess:
    """What one ServiceAccount may do with Secrets, per namespace (None: RBAC not modelled, all allowed)."""

    user: str
    rules: dict[str, list[_Rule]] | None  # namespace -> rules; "*" for cluster-wide grants
    builtin_store: bool = True  # daprd's built-in "kubernetes" secret store (the annotation can disable it)

    @classmethod
    def for_app(cls, docs: list[dict[str, Any]], app_id: str, namespace: str) -> SecretAccess:
        """The app's ServiceAccount and the secret rules bound to it, from Deployments and RBAC objects."""
        account, builtin = "default", True
        for doc in docs:
            template = ((doc.get("spec") or {}).get("template") or {})
            annotations = (template.get("metadata") or {}).get("annotations") or {}
            if doc.get("kind") in ("Deployment", "StatefulSet") and annotations.get(APP_ID_ANNOTATION) == app_id:
                account = str((template.get("spec") or {}).get("serviceAccountName") or "default")
                namespace = _meta(doc, "namespace", namespace)
                builtin = str(annotations.get(DISABLE_BUILTIN_STORE_ANNOTATION, "false")).lower() != "true"
        user = f"system:serviceaccount:{namespace}:{account}"
        if not any(doc.get("kind") in RBAC_KINDS for doc in docs):
            return cls(user, None, builtin)
        roles = {(doc.get("kind"), _meta(doc, "namespace", namespace) if doc.get("kind") == "Role" else "",
                  _meta(doc, "name")): doc for doc in docs if doc.get("kind") in ("Role", "ClusterRole")}
        groups = {"system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"}
        rules: dict[str, list[_Rule]] = {}
        for binding in docs:
            if binding.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
                continue
            where = _meta(binding, "namespace", namespace) if binding.get("kind") == "RoleBinding" else "*"
            if not any(_is_subject(s, account, namespace, user, groups, where) for s in binding.get("subjects") or []):
                continue
            ref = binding.get("roleRef") or {}
            role_ns = where if ref.get("kind") == "Role" else ""
            role = roles.get((ref.get("kind"), role_ns, str(ref.get("name", ""))))
            if role is not None:
                rules.setdefault(where, []).extend(_secret_rules(role))
        return cls(user, rules, builtin)

    def check(self, verb: str, namespace: str, name: str | None = None) -> None:
        """Raise Forbidden with the API server's message unless `verb` on secrets (named `name`) is allowed."""
        if self.rules is None:
            return
        granted = [*self.rules.get(namespace, []), *self.rules.get("*", [])]
        if any(rule.allows(verb, name) for rule in granted):
            return
        target = f'secrets "{name}"' if name is not None else "secrets"
        raise Forbidden(f'{target} is forbidden: User "{self.user}" cannot {verb} resource "secrets" '
                        f'in API group "" in the namespace "{namespace}"')


def _is_subject(subject: dict[str, Any], account: str, namespace: str, user: str, groups: set[str],
                binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), str(subject.get("name", ""))
    if kind == "ServiceAccount":
        subject_ns = str(subject.get("namespace") or (binding_namespace if binding_namespace != "*" else ""))
        return name == account and subject_ns == namespace
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    return False
