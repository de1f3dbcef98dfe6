"""The sandbox's secrets file and dev token.

Services in the sandbox run with SECRET_SOURCE=dapr and read their secrets through the sidecar,
as they do in the cluster; the sidecar serves them from this JSON file
(``{"<secret-name>": {"<key>": "<value>"}}``, mode 0600). The JWT secret is generated once per
sandbox directory and kept, so dev tokens stay valid across `down`/`up`.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

from console.sandbox.plan import write_json_atomic
from services.platform.auth import mint_dev_token
from services.platform.scopes import USER_SCOPES

log = logging.getLogger(__name__)

DEV_USER = "dev-user"
TOKEN_TTL_S = 12 * 3600
JWT_SECRET = ("todo-auth", "jwt-secret")
# Secrets the services read through the sidecar (their settings' SECRET_FIELDS): random values are
# generated once per sandbox directory and kept, so tokens stay valid across `down`/`up`.
RANDOM_SECRETS: tuple[tuple[str, str], ...] = (
    JWT_SECRET,
    ("todo-internal", "token"),
    ("todo-notification", "webhook-secret"),
)
# Database URLs, by the service whose database it is, under the names of the cluster's Secrets
# (kustomize/secrets): `todo-db` holds the backend's (and the state store's) database.
DATABASE_SECRETS: dict[tuple[str, str], str] = {
    ("todo-db", "url"): "backend",
    ("todo-db", "connection-string"): "backend",
    ("todo-audit-db", "url"): "audit",
}


def read_secrets(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_secrets(path: Path, *, database_urls: dict[str, str]) -> dict[str, dict[str, str]]:
    """Write (or refresh) the secrets file and return its content.

    `database_urls` maps a service (backend, audit) to its database URL. Random secrets already in
    the file are kept, and so is anything a developer added by hand.
    """
    data: dict[str, Any] = read_secrets(path)
    for name, key in RANDOM_SECRETS:
        entry = data.setdefault(name, {})
        if not entry.get(key):
            entry[key] = secrets.token_urlsafe(32)
    for (name, key), service in DATABASE_SECRETS.items():
        if service in database_urls:
            data.setdefault(name, {})[key] = database_urls[service]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data, mode=0o600)
    log.info("secrets written", extra={"path": str(path), "names": sorted(data)})
    return data


def dev_token(jwt_secret: str, subject: str = DEV_USER, scopes: tuple[str, ...] = USER_SCOPES) -> str:
    """A bearer token the services accept in development, minted by the platform's own helper (it
    knows the issuer and audience they check)."""
    return mint_dev_token(jwt_secret, subject, ttl_s=TOKEN_TTL_S, scopes=" ".join(scopes))
