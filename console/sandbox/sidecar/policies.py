"""The Configuration CR's access policies: service invocation access control and secret scopes.

kustomize/base's `todo-config` (the dapr.io/config of every deployment) denies invocation by
default and lets only some callers reach some paths, and limits which secrets `secretstore`
gives out. daprd enforces both (invocation on the callee's sidecar, pkg/acl/acl.go; secrets in
pkg/api/universal/secrets.go), so the sandbox must too, or a call that is refused in the cluster
would work here. Caller identity is the app-id, trust domain and namespace the sandbox's (as mTLS
gives them in the cluster). The callee's policy is this sidecar's Configuration: all apps here
share one.
Docs: https://docs.dapr.io/operations/configuration/invoke-allowlist/ ,
https://docs.dapr.io/operations/configuration/secret-scope/
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TRUST_DOMAIN = "public"


def _matches(pattern: str, operation: str) -> bool:
    """Operation globs as daprd's ACL trie: `*` one path segment (or its rest), `**` all that follows."""
    pat, ops = pattern.lower().strip("/").split("/"), operation.lower().strip("/").split("/")
    for i, part in enumerate(pat):
        if part == "**":
            return len(ops) > i
        if i >= len(ops):
            return False
        if part.endswith("*"):
            if not ops[i].startswith(part[:-1]):
                return False
        elif part != ops[i]:
            return False
    return len(ops) == len(pat)


@dataclass(frozen=True)
class AccessControl:
    default_action: str = "allow"
    policies: tuple[dict[str, Any], ...] = ()

    def allows(self, caller: str, namespace: str, operation: str, verb: str) -> bool:
        """isOperationAllowedByAccessControlPolicy for an HTTP app."""
        action = self.default_action
        policy = next((p for p in self.policies if p.get("appId") == caller
                       and str(p.get("namespace", "")) == namespace), None)
        if policy is None or str(policy.get("trustDomain", TRUST_DOMAIN)) != TRUST_DOMAIN:
            return action.lower() == "allow"
        if policy.get("defaultAction"):
            action = str(policy["defaultAction"])
        for op in policy.get("operations") or []:
            if _matches(str(op.get("name", "")), operation):
                verbs = [str(v).upper() for v in op.get("httpVerb") or []]
                if verb.upper() in verbs or "*" in verbs:
                    action = str(op.get("action", action))
                break
        return action.lower() == "allow"


@dataclass(frozen=True)
class SecretScope:
    default_access: str = "allow"
    allowed: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()

    def allows(self, key: str) -> bool:
        """config.SecretsScope.IsSecretAllowed."""
        if self.allowed:
            return key in self.allowed
        if key in self.denied:
            return False
        return self.default_access.lower() != "deny"


@dataclass(frozen=True)
class Policies:
    access: AccessControl | None = None
    secret_scopes: dict[str, SecretScope] = field(default_factory=dict)

    @classmethod
    def from_configuration(cls, spec: dict[str, Any] | None) -> Policies:
        if not spec:
            return cls()
        acl = spec.get("accessControl")
        access = None
        if acl:
            access = AccessControl(str(acl.get("defaultAction", "allow")), tuple(acl.get("policies") or ()))
        scopes = {
            str(s["storeName"]): SecretScope(str(s.get("defaultAccess", "allow")),
                                             tuple(s.get("allowedSecrets") or ()), tuple(s.get("deniedSecrets") or ()))
            for s in (spec.get("secrets") or {}).get("scopes") or [] if s.get("storeName")
        }
        return cls(access, scopes)

    def may_invoke(self, caller: str, namespace: str, operation: str, verb: str) -> bool:
        return self.access is None or self.access.allows(caller, namespace, operation, verb)

    def may_read_secret(self, store: str, key: str) -> bool:
        scope = self.secret_scopes.get(store)
        return scope is None or scope.allows(key)
