"""The `secretstore` component: a JSON file standing in for Kubernetes Secrets.

The file maps secret name -> {key: value}, like a Secret's data. It is re-read on every call so
the supervisor (or a developer) can edit it while the sandbox runs. A missing secret fails with
the Kubernetes API's wording (`secrets "<name>" not found`), which daprd wraps in ERR_SECRET_GET.
"""

from __future__ import annotations

import json
from pathlib import Path


class SecretLookupError(Exception):
    """The store could not answer (missing secret, unreadable file)."""


class FileSecretStore:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, str]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError) as exc:
            raise SecretLookupError(f"cannot read secrets file {self.path}: {exc}") from None
        if not isinstance(raw, dict):
            raise SecretLookupError(f"secrets file {self.path} must hold a JSON object")
        return {str(name): {str(k): str(v) for k, v in (keys or {}).items()} for name, keys in raw.items()}

    def get(self, name: str) -> dict[str, str]:
        secrets = self._load()
        if name not in secrets:
            raise SecretLookupError(f'secrets "{name}" not found')
        return secrets[name]

    def bulk(self) -> dict[str, dict[str, str]]:
        return self._load()
