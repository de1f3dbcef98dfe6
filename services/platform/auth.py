"""Bearer JWT verification shared by every service that faces users (backend, websocket, audit).

The rules, each chosen on purpose (the README's Authentication paragraph says the same):

- Production verifies tokens from an identity provider: RS256 or ES256 only (PS256, HS256 and
  `none` are refused), with a key from the provider's JWKS whose `kid` the token names, and the
  issuer, audience, expiry and subject checked. The caller's id is the `sub` claim.
- Local runs use dev-token mode: HS256 with a shared secret of at least 32 bytes (RFC 7518 3.2),
  minted by `mint_dev_token`. A shared secret lets whoever holds it mint any user's token, so
  production refuses it unless deliberately allowed (`UserAuthSettings`).
- Scopes fail closed: a token without a scope claim has no scopes, and every route names the one
  it needs. `scope` (RFC 9068: space-separated) and `scp` (a string or a list, as Azure AD and Okta
  issue it) are both read.
- A client is told only `token expired` or `invalid token`; why a token was refused (PyJWT's text)
  is logged with the request's correlation id, for operators, never returned.
- The provider's keys are fetched with a short timeout (JWKS_TIMEOUT_S, 3 s), cached for
  JWKS_CACHE_S (5 min), and an unknown `kid` forces a refetch at most every JWKS_COOLDOWN_S (30 s,
  PyJWT's cooldown, PyJWT >= 2.15), so forged `kid`s cannot make us hammer the provider.
  `verify_async` never fetches on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jwt
from pydantic import BaseModel, Field

from services.platform.scopes import USER_SCOPES

log = logging.getLogger(__name__)

DEV_ISSUER = "todo-dev"
DEV_AUDIENCE = "todo-api"
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")
MIN_SECRET_BYTES = 32
_REQUIRED_CLAIMS = ["sub", "exp", "iss", "aud"]


class AuthError(Exception):
    """A refused token; the message (`token expired` or `invalid token`) is all the client is told."""


class KeysUnavailable(Exception):
    """The identity provider's keys could not be fetched: not the token's fault, so ask to retry (503)."""


class AuthConfig(BaseModel):
    jwt_secret: str | None = None
    jwks_url: str | None = None
    issuer: str = DEV_ISSUER
    audience: str = DEV_AUDIENCE
    leeway_s: int = 30
    jwks_timeout_s: float = Field(3.0, gt=0)
    jwks_cache_s: float = Field(300.0, gt=0)
    jwks_cooldown_s: float = Field(30.0, ge=0)


@dataclass(frozen=True)
class Principal:
    user_id: str
    scopes: frozenset[str]


class TokenVerifier:
    def __init__(self, config: AuthConfig) -> None:
        if not config.jwks_url and not config.jwt_secret:
            raise ValueError("authentication needs JWKS_URL or JWT_SECRET")
        if not config.jwks_url and len(str(config.jwt_secret).encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 3.2): a shorter "
                             "HS256 secret can be brute-forced from one token")
        self.config = config
        self._jwks: jwt.PyJWKClient | None = None
        self._fetcher: ThreadPoolExecutor | None = None
        self._fetching: dict[str, asyncio.Future[jwt.PyJWK]] = {}
        if config.jwks_url:
            self._jwks = jwt.PyJWKClient(config.jwks_url, cache_jwk_set=True, lifespan=config.jwks_cache_s,
                                         timeout=config.jwks_timeout_s, cooldown_duration=config.jwks_cooldown_s)
            # Its own threads: a slow provider must not take the default executor every service's
            # Dapr calls run in.
            self._fetcher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="jwks")

    def verify(self, token: str) -> Principal:
        """For worker threads (FastAPI runs sync dependencies there): may wait for a key fetch.

        A cached key is used without PyJWKClient, whose lock a slow refetch holds for every caller."""
        if self._jwks is None:
            return self._decode(token, str(self.config.jwt_secret))
        kid = _kid(token)
        return self._decode(token, self._cached_key(kid) or self._fetch_key(kid))

    async def verify_async(self, token: str) -> Principal:
        """For the event loop: a cached key verifies in place (no I/O, well under a millisecond);
        a missing one is fetched in a background thread, once for all the callers waiting for it."""
        if self._jwks is None:
            return self.verify(token)
        kid = _kid(token)
        key = self._cached_key(kid)
        if key is None:
            key = await self._fetch_key_off_loop(kid)
        return self._decode(token, key)

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.shutdown(wait=False, cancel_futures=True)

    def _cached_key(self, kid: str) -> jwt.PyJWK | None:
        cache = self._jwks.jwk_set_cache if self._jwks is not None else None
        keys = cache.get() if cache is not None else None  # None while empty or expired
        if keys is None:
            return None
        return next((k for k in keys.keys if k.key_id == kid and k.public_key_use in ("sig", None)), None)

    async def _fetch_key_off_loop(self, kid: str) -> jwt.PyJWK:
        pending = self._fetching.get(kid)
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(self._fetcher, self._fetch_key, kid)
            self._fetching[kid] = pending
            pending.add_done_callback(lambda done: self._fetched(kid, done))
        return await asyncio.shield(pending)

    def _fetched(self, kid: str, done: asyncio.Future[jwt.PyJWK]) -> None:
        self._fetching.pop(kid, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter has gone

    def _fetch_key(self, kid: str) -> jwt.PyJWK:
        """The provider's key for `kid` (PyJWKClient: cached set, refetch on a miss after the cooldown)."""
        if self._jwks is None:
            raise RuntimeError("no JWKS_URL configured")
        started = time.monotonic()
        try:
            return self._jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("identity provider keys unavailable",
                        extra={"error": str(exc), "waited_s": round(time.monotonic() - started, 3)})
            raise KeysUnavailable("identity provider keys unavailable; retry") from exc
        except jwt.PyJWKClientError as exc:
            raise _refused("invalid token", exc) from exc

    def _decode(self, token: str, key: Any) -> Principal:
        algorithms = list(ASYMMETRIC_ALGORITHMS) if self._jwks is not None else ["HS256"]
        try:
            claims = jwt.decode(
                token, key, algorithms=algorithms, audience=self.config.audience, issuer=self.config.issuer,
                leeway=self.config.leeway_s,
                options={"require": _REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _refused("token expired", exc) from exc
        except jwt.InvalidTokenError as exc:
            raise _refused("invalid token", exc) from exc
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise _refused("invalid token", ValueError("bad subject"))
        return Principal(sub, _scopes(claims))


def _kid(token: str) -> str:
    """The key id a provider's token names (unverified: it only picks the key to verify with)."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError as exc:
        raise _refused("invalid token", exc) from exc
    if not isinstance(kid, str) or not kid:
        raise _refused("invalid token", ValueError("no kid in the token header"))
    return kid


def _refused(answer: str, reason: Exception) -> AuthError:
    log.info("token refused", extra={"answer": answer, "reason": str(reason)[:300]})
    return AuthError(answer)


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    scopes: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(item for item in value if isinstance(item, str))
    return frozenset(scopes)


def mint_dev_token(secret: str, user_id: str, *, ttl_s: int = 12 * 3600,
                   scopes: str = " ".join(USER_SCOPES), issuer: str = DEV_ISSUER,
                   audience: str = DEV_AUDIENCE) -> str:
    """An HS256 token for local runs and tests; never accepted where JWKS is configured."""
    now = int(time.time())
    claims = {"sub": user_id, "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl_s, "scope": scopes}
    return jwt.encode(claims, secret, algorithm="HS256")
