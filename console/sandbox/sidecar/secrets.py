"""The secretstores.kubernetes component over a JSON file standing in for the namespace's Secrets.

The file maps secret name -> {key: value}, like a Secret's data. It is re-read on every call so
the supervisor (or a developer) can edit it while the sandbox runs. As components-contrib's
Kubernetes store does, a get asks the API server for one Secret in the request's `namespace`
metadata (else the component's `defaultNamespace`, else the pod's namespace) and a bulk read lists
them all; the app's ServiceAccount must be allowed to (rbac.py), or the call fails with the API
server's 403 text. A missing secret fails with the API's wording (`secrets "<name>" not found`),
which daprd wraps in ERR_SECRET_GET. The file holds the sandbox namespace's Secrets only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from console.sandbox.sidecar.rbac import Forbidden, SecretAccess


class SecretLookupError(Exception):
    """The store could not answer (forbidden, missing secret, unreadable file)."""


class FileSecretStore:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, str]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError) as exc:
            raise SecretLookupError(f"cannot read secrets file {self.path}: {exc}") from None
        if not isinstance(raw, dict):
            raise SecretLookupError(f"secrets file {self.path} must hold a JSON object")
        return {str(name): {str(k): str(v) for k, v in (keys or {}).items()} for name, keys in raw.items()}


@dataclass(frozen=True)
class KubernetesSecretStore:
    """One secretstores.kubernetes component (a declared one, or daprd's built-in `kubernetes`)."""

    file: FileSecretStore
    access: SecretAccess
    sandbox_namespace: str
    default_namespace: str = ""

    def _namespace(self, metadata: dict[str, str]) -> str:
        return metadata.get("namespace") or self.default_namespace or self.sandbox_namespace

    def _secrets(self, namespace: str, verb: str, name: str | None = None) -> dict[str, dict[str, str]]:
        try:
            self.access.check(verb, namespace, name)
        except Forbidden as exc:
            raise SecretLookupError(str(exc)) from None
        return self.file.load() if namespace == self.sandbox_namespace else {}

    def get(self, name: str, metadata: dict[str, str]) -> dict[str, str]:
        secrets = self._secrets(self._namespace(metadata), "get", name)
        if name not in secrets:
            raise SecretLookupError(f'secrets "{name}" not found')
        return secrets[name]

    def bulk(self, metadata: dict[str, str]) -> dict[str, dict[str, str]]:
        return self._secrets(self._namespace(metadata), "list")
