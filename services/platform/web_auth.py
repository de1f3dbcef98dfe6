"""User authentication settings and the bearer dependency for services that face users.

The websocket and audit services verify the same tokens as the backend (same issuer,
audience, JWKS or dev secret); they share this settings mixin and dependency rather than
each restating the fields and the 401 answers.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.platform.auth import DEV_AUDIENCE, DEV_ISSUER, AuthConfig, AuthError, Principal, TokenVerifier
from services.platform.settings import ServiceSettings

_bearer = HTTPBearer(auto_error=False)


class UserAuthSettings(ServiceSettings):
    """Token verification settings; `jwt_secret` comes from secret `todo-auth` key `jwt-secret`."""

    SECRET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {"jwt_secret": ("todo-auth", "jwt-secret")}

    jwt_secret: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str = DEV_ISSUER
    jwt_audience: str = DEV_AUDIENCE

    @property
    def auth(self) -> AuthConfig:
        # A JWKS URL wins: where an identity provider is configured, HS256 dev tokens are refused.
        secret = None if self.jwks_url else self.jwt_secret
        return AuthConfig(jwt_secret=secret, jwks_url=self.jwks_url, issuer=self.jwt_issuer,
                          audience=self.jwt_audience)


def bearer_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller of an HTTP route, verified with `app.state.verifier`; 401 otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier = request.app.state.verifier
    try:
        return verifier.verify(credentials.credentials)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from exc
