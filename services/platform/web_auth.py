"""User authentication settings and the bearer dependency for services that face users.

The websocket and audit services verify the same tokens as the backend (same issuer,
audience, JWKS or dev secret); they share this settings mixin and dependency rather than
each restating the fields and the 401 answers.

Production (APP_ENV=production) starts only with an identity provider: JWKS_URL (https),
JWT_ISSUER and JWT_AUDIENCE. A shared HS256 secret would let every service that holds it
(backend, websocket, audit) mint a token for any user; AUTH_ALLOW_SHARED_SECRET=true accepts
that deliberately (a cluster without an identity provider yet), and is the only way to.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, model_validator

from services.platform.auth import DEV_AUDIENCE, DEV_ISSUER, AuthConfig, AuthError, KeysUnavailable, Principal
from services.platform.deps import get_verifier
from services.platform.settings import ServiceSettings, SettingsError

_bearer = HTTPBearer(auto_error=False)


class UserAuthSettings(ServiceSettings):
    """Token verification settings; `jwt_secret` comes from secret `todo-auth` key `jwt-secret`."""

    SECRET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {"jwt_secret": ("todo-auth", "jwt-secret")}

    jwt_secret: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str = DEV_ISSUER
    jwt_audience: str = DEV_AUDIENCE
    jwks_timeout_s: float = Field(3.0, gt=0, le=30)
    jwks_cache_s: float = Field(300.0, gt=0)
    jwks_cooldown_s: float = Field(30.0, ge=0)
    auth_allow_shared_secret: bool = False

    @model_validator(mode="after")
    def _an_identity_provider_in_production(self) -> UserAuthSettings:
        if self.app_env != "production":
            return self
        if self.jwks_url:
            unset = [f"JWT_{name.upper()}" for name in ("issuer", "audience")
                     if f"jwt_{name}" not in self.model_fields_set or not getattr(self, f"jwt_{name}")]
            if unset:
                raise SettingsError(f"JWKS_URL needs {' and '.join(unset)}: the identity provider's issuer and "
                                    "this API's audience, as its tokens carry them")
            if not self.jwks_url.startswith("https://"):
                raise SettingsError("JWKS_URL must be an https:// URL in production: keys fetched over plain "
                                    "HTTP can be swapped on the way")
        elif not self.auth_allow_shared_secret:
            raise SettingsError("APP_ENV=production needs JWKS_URL, JWT_ISSUER and JWT_AUDIENCE (your identity "
                                "provider); a shared JWT_SECRET lets every service holding it mint any user's "
                                "token. Set AUTH_ALLOW_SHARED_SECRET=true only to accept that on purpose")
        return self

    def secret_fields(self) -> dict[str, tuple[str, str]]:
        # Where an identity provider verifies users, the shared secret is neither read nor needed.
        fields = super().secret_fields()
        return {k: v for k, v in fields.items() if k != "jwt_secret"} if self.jwks_url else fields

    @property
    def auth(self) -> AuthConfig:
        # A JWKS URL wins: where an identity provider is configured, HS256 dev tokens are refused.
        secret = None if self.jwks_url else self.jwt_secret
        return AuthConfig(jwt_secret=secret, jwks_url=self.jwks_url or None, issuer=self.jwt_issuer,
                          audience=self.jwt_audience, jwks_timeout_s=self.jwks_timeout_s,
                          jwks_cache_s=self.jwks_cache_s, jwks_cooldown_s=self.jwks_cooldown_s)


async def bearer_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller of an HTTP route, verified with the app's verifier; 401, or 503 while the identity
    provider's keys cannot be fetched.

    A coroutine, not a plain function: FastAPI runs a plain dependency in a worker thread, and the
    hop there and back cost more CPU than verifying an HS256 token or a cached key's signature
    (py-spy: thread hand-offs were a fifth of the backend's CPU under load). `verify_async` fetches a
    missing key in a background thread, so the event loop never waits on the identity provider."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        return await get_verifier(request).verify_async(credentials.credentials)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from exc
    except KeysUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"}) from exc
