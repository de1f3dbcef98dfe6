"""The token verifier remembers tokens it verified: the same token is not checked again until it
expires (or the key cache's lifetime passes), and nothing else rides on a remembered one."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from services.platform import auth
from services.platform.auth import AuthConfig, AuthError, Principal, TokenVerifier, mint_dev_token

SECRET = "a-dev-secret-of-at-least-32-bytes!!"


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token PyJWT is asked to verify, in order."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(auth.jwt, "decode", counting)
    return seen


def test_a_verified_token_is_not_checked_again_while_it_is_good(decodes: list[str]) -> None:
    verifier = TokenVerifier(AuthConfig(jwt_secret=SECRET))
    token = mint_dev_token(SECRET, "alice", scopes="tasks:read")
    first = verifier.verify(token)
    assert [verifier.verify(token) for _ in range(5)] == [first] * 5
    assert first == Principal("alice", frozenset({"tasks:read"}))
    assert decodes == [token]


def test_a_remembered_token_is_verified_again_once_it_expires(decodes: list[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(AuthConfig(jwt_secret=SECRET, leeway_s=0))
    token = mint_dev_token(SECRET, "alice", ttl_s=60)
    verifier.verify(token)
    later = time.time() + 61
    monkeypatch.setattr(auth.time, "time", lambda: later)  # the verifier's clock only: PyJWT reads datetime's
    verifier.verify(token)
    assert decodes == [token, token]


def test_a_remembered_token_is_verified_again_after_the_key_cache_lifetime(
        decodes: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(AuthConfig(jwt_secret=SECRET, jwks_cache_s=10))
    token = mint_dev_token(SECRET, "alice", ttl_s=3600)
    verifier.verify(token)
    later = time.time() + 11
    monkeypatch.setattr(auth.time, "time", lambda: later)
    verifier.verify(token)
    assert decodes == [token, token]


def test_a_tampered_copy_of_a_remembered_token_is_refused(decodes: list[str]) -> None:
    verifier = TokenVerifier(AuthConfig(jwt_secret=SECRET))
    token = mint_dev_token(SECRET, "alice")
    verifier.verify(token)
    header, claims, signature = token.split(".")
    forged = jwt.encode({**jwt.decode(token, options={"verify_signature": False}), "sub": "mallory"},
                        "another-secret-another-secret-xxxx", algorithm="HS256")
    for other in (forged, f"{header}.{claims}.{signature[:-2]}AA", f"{header}.{forged.split('.')[1]}.{signature}"):
        with pytest.raises(AuthError, match="invalid token"):
            verifier.verify(other)


def test_the_oldest_remembered_token_is_forgotten_first(decodes: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 2)
    verifier = TokenVerifier(AuthConfig(jwt_secret=SECRET))
    a, b, c = (mint_dev_token(SECRET, user) for user in ("a", "b", "c"))
    for token in (a, b, c, c, b, a):
        verifier.verify(token)
    assert decodes == [a, b, c, a]
