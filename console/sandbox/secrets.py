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
import time
from pathlib import Path
from typing import Any

import jwt

from console.sandbox.plan import write_json_atomic

log = logging.getLogger(__name__)

DB_SECRET = ("todo-db", "url")
JWT_SECRET = ("todo-auth", "jwt-secret")
DEV_USER = "dev-user"
TOKEN_TTL_S = 12 * 3600


def read_secrets(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def jwt_secret_for(path: Path) -> str:
    """The secret already in the file, else a new random one."""
    existing = read_secrets(path).get(JWT_SECRET[0], {}).get(JWT_SECRET[1])
    return existing or secrets.token_urlsafe(32)


def write_secrets(path: Path, *, jwt_secret: str, database_url: str) -> None:
    """Write (or rewrite) the secrets file, keeping any extra secrets a developer added by hand."""
    data: dict[str, Any] = read_secrets(path)
    data.setdefault(DB_SECRET[0], {})[DB_SECRET[1]] = database_url
    data.setdefault(JWT_SECRET[0], {})[JWT_SECRET[1]] = jwt_secret
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data, mode=0o600)


def dev_token(jwt_secret: str, subject: str = DEV_USER) -> str:
    """A bearer token the services accept in development.

    The platform's own minting helper is used when it is importable (it knows the issuer,
    audience and scopes the services check); without it, a plain HS256 JWT with sub/iat/exp.
    """
    try:
        from services.platform.auth import mint_dev_token
    except ImportError:
        now = int(time.time())
        return jwt.encode({"sub": subject, "iat": now, "exp": now + TOKEN_TTL_S}, jwt_secret, algorithm="HS256")
    return str(mint_dev_token(jwt_secret, subject, ttl_s=TOKEN_TTL_S))
