"""Production starts only with an identity provider, unless a shared secret is accepted on purpose."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.platform.web_auth import UserAuthSettings

IDP = {"JWKS_URL": "https://idp.example/.well-known/jwks.json", "JWT_ISSUER": "https://idp.example/",
       "JWT_AUDIENCE": "todo-api"}


@pytest.fixture(autouse=True)
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the cluster runs the services: everything from the environment (the todo-runtime ConfigMap)."""
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_SOURCE", "dapr")


def test_production_without_an_identity_provider_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWKS_URL", "")  # what the ConfigMap sets until an operator fills it in
    with pytest.raises(ValidationError, match="APP_ENV=production needs JWKS_URL, JWT_ISSUER and JWT_AUDIENCE"):
        UserAuthSettings()


def test_a_shared_secret_in_production_must_be_accepted_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_ALLOW_SHARED_SECRET", "true")
    settings = UserAuthSettings()
    asked: list[tuple[str, str]] = []

    def fetch(name: str, key: str) -> str:
        asked.append((name, key))
        return "a-random-secret-from-the-store-0123456789"

    assert settings.with_secrets(fetch).auth.jwt_secret == "a-random-secret-from-the-store-0123456789"
    assert asked == [("todo-auth", "jwt-secret")]


@pytest.mark.parametrize(("unset", "named"), [("JWT_ISSUER", "JWT_ISSUER"), ("JWT_AUDIENCE", "JWT_AUDIENCE")])
def test_jwks_needs_the_issuer_and_the_audience(monkeypatch: pytest.MonkeyPatch, unset: str, named: str) -> None:
    for name, value in IDP.items():
        if name != unset:
            monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=f"JWKS_URL needs {named}"):
        UserAuthSettings()


def test_jwks_over_plain_http_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**IDP, "JWKS_URL": "http://idp.example/jwks"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="https"):
        UserAuthSettings()


def test_with_an_identity_provider_the_shared_secret_is_neither_read_nor_needed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in IDP.items():
        monkeypatch.setenv(name, value)

    def fetch(name: str, key: str) -> str:
        raise AssertionError(f"secret {name}/{key} read")

    auth = UserAuthSettings().with_secrets(fetch).auth
    assert (auth.jwks_url, auth.issuer, auth.audience, auth.jwt_secret) == (
        IDP["JWKS_URL"], IDP["JWT_ISSUER"], IDP["JWT_AUDIENCE"], None)
