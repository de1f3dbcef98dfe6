"""The rendered token settings, fed to the services' own settings class: production starts only with an
identity provider; the dev overlay (a local cluster without one) accepts the shared secret on purpose."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.platform.web_auth import UserAuthSettings
from tests.kustomize.conftest import Objects, one


def service_environment(objs: Objects) -> dict[str, Any]:
    """What backend, websocket and audit read: the runtime and the auth ConfigMaps (envFrom)."""
    return {**one(objs, "ConfigMap", "todo-runtime")["data"], **one(objs, "ConfigMap", "todo-auth-config")["data"]}


def test_prod_refuses_to_start_until_an_identity_provider_is_set(prod: Objects, monkeypatch: pytest.MonkeyPatch) -> None:
    env = service_environment(prod)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="APP_ENV=production needs JWKS_URL"):
        UserAuthSettings()
    # What the operator fills in: the provider's endpoint, issuer and this API's audience.
    monkeypatch.setenv("JWKS_URL", "https://login.example.com/.well-known/jwks.json")
    monkeypatch.setenv("JWT_ISSUER", "https://login.example.com/")
    assert UserAuthSettings().auth.jwks_url == "https://login.example.com/.well-known/jwks.json"


def test_dev_accepts_the_shared_secret_deliberately(dev: Objects, monkeypatch: pytest.MonkeyPatch) -> None:
    env = service_environment(dev)
    assert env["AUTH_ALLOW_SHARED_SECRET"] == "true"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert UserAuthSettings().auth_allow_shared_secret is True
