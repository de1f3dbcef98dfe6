"""Bearer JWT verification shared by every service that faces users (backend, websocket).

Production verifies tokens from an identity provider: RS256/ES256 against its JWKS URL,
with issuer and audience checked. Local runs use dev-token mode: HS256 tokens signed with
a shared secret, minted by `mint_dev_token` (the sandbox prints one). The caller's id is
the `sub` claim; every query a service makes is scoped to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

import jwt
from pydantic import BaseModel

DEV_ISSUER = "todo-dev"
DEV_AUDIENCE = "todo-api"
_ASYMMETRIC = ["RS256", "ES256", "PS256"]


class AuthError(Exception):
    """Why a token was refused; the message is safe to return to the client."""


class AuthConfig(BaseModel):
    jwt_secret: str | None = None
    jwks_url: str | None = None
    issuer: str = DEV_ISSUER
    audience: str = DEV_AUDIENCE
    leeway_s: int = 30


@dataclass(frozen=True)
class Principal:
    user_id: str
    scopes: frozenset[str]


class TokenVerifier:
    def __init__(self, config: AuthConfig) -> None:
        if not config.jwks_url and not config.jwt_secret:
            raise ValueError("authentication needs JWKS_URL or JWT_SECRET")
        self.config = config

    @cached_property
    def _jwks(self) -> jwt.PyJWKClient:
        return jwt.PyJWKClient(str(self.config.jwks_url), cache_keys=True, lifespan=300)

    def verify(self, token: str) -> Principal:
        try:
            if self.config.jwks_url:
                key = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = _ASYMMETRIC
            else:
                key, algorithms = str(self.config.jwt_secret), ["HS256"]
            claims = jwt.decode(
                token, key, algorithms=algorithms, audience=self.config.audience,
                issuer=self.config.issuer, leeway=self.config.leeway_s,
                options={"require": ["sub", "exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.PyJWKClientError as exc:
            raise AuthError("token signing key not found") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise AuthError("invalid token: bad subject")
        scope = claims.get("scope", "")
        return Principal(sub, frozenset(scope.split()) if isinstance(scope, str) else frozenset())


def mint_dev_token(secret: str, user_id: str, *, ttl_s: int = 12 * 3600,
                   scopes: str = "tasks:read tasks:write", issuer: str = DEV_ISSUER,
                   audience: str = DEV_AUDIENCE) -> str:
    """An HS256 token for local runs and tests; never accepted where JWKS is configured."""
    now = int(time.time())
    claims = {"sub": user_id, "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl_s, "scope": scopes}
    return jwt.encode(claims, secret, algorithm="HS256")
