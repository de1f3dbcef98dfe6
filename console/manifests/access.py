"""What a namespaced Role lets its subject do to rendered objects, by the Kubernetes RBAC rules.

Continuous deployment applies overlays/prod-apps as ServiceAccount ci-deployer: `kubectl apply` reads and
patches every object it sends, so each one must be allowed `get` and `patch` by the Role. The preflight and
the tests check that here, object by object, instead of finding out from a failed pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from console.manifests.render import ObjectRef, find

# What `kubectl apply` needs on an object that exists.
APPLY_VERBS = ("get", "patch")


def api_group(obj: dict[str, Any]) -> str:
    """The API group of an object ("" for the core group)."""
    api_version = str(obj.get("apiVersion", ""))
    return api_version.rpartition("/")[0]


def resource_name(kind: str) -> str:
    """The REST resource of a kind: lower case, plural (Deployment -> deployments, Resiliency -> resiliencies)."""
    lower = kind.lower()
    if lower.endswith("y") and not lower.endswith(("ay", "ey", "oy")):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


def _rule_allows(rule: dict[str, Any], verb: str, group: str, resource: str, name: str) -> bool:
    verbs, groups, resources = rule.get("verbs") or [], rule.get("apiGroups") or [], rule.get("resources") or []
    names = rule.get("resourceNames") or []
    return ((verb in verbs or "*" in verbs) and (group in groups or "*" in groups)
            and (resource in resources or "*" in resources) and (not names or name in names))


def role_allows(role: dict[str, Any], verb: str, obj: dict[str, Any]) -> bool:
    """Whether the Role grants `verb` on `obj` (a Role reaches only objects of its own namespace)."""
    meta = obj.get("metadata") or {}
    if meta.get("namespace") != role["metadata"].get("namespace"):
        return False
    group, resource = api_group(obj), resource_name(str(obj.get("kind")))
    return any(_rule_allows(rule, verb, group, resource, str(meta.get("name"))) for rule in role.get("rules") or [])


def refused(objs: Iterable[dict[str, Any]], role: dict[str, Any], verbs: Iterable[str] = APPLY_VERBS) -> list[str]:
    """Each object and verb the Role does not grant, as "Kind namespace/name: verb"."""
    wanted = tuple(verbs)
    return [f"{ObjectRef.of(obj)}: {verb}" for obj in objs for verb in wanted if not role_allows(role, verb, obj)]


def service_account_role(objs: list[dict[str, Any]], account: str, namespace: str) -> dict[str, Any] | None:
    """The Role bound to a ServiceAccount by a RoleBinding in its namespace (the one continuous deployment uses)."""
    for binding in (o for o in objs if o.get("kind") == "RoleBinding"):
        if binding["metadata"].get("namespace") != namespace or binding["roleRef"].get("kind") != "Role":
            continue
        if any(s.get("kind") == "ServiceAccount" and s.get("name") == account for s in binding.get("subjects") or []):
            return find(objs, "Role", binding["roleRef"]["name"], namespace)
    return None
