"""Settings rules: secrets through the Dapr store in production, placeholders refused."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import ValidationError

from services.platform.settings import ServiceSettings, SettingsError


class DemoSettings(ServiceSettings):
    SECRET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {"api_key": ("demo", "key")}
    api_key: str | None = None


def test_production_requires_the_dapr_secret_store() -> None:
    with pytest.raises(ValidationError, match="SECRET_SOURCE=dapr"):
        DemoSettings(app_env="production", secret_source="env")


def test_secrets_come_from_the_store_in_dapr_mode() -> None:
    asked: list[tuple[str, str]] = []

    def fetch(name: str, key: str) -> str:
        asked.append((name, key))
        return "real-value-from-the-store"

    resolved = DemoSettings(app_env="production", secret_source="dapr").with_secrets(fetch)
    assert resolved.api_key == "real-value-from-the-store"
    assert asked == [("demo", "key")]


def test_placeholder_secrets_are_refused_outside_development() -> None:
    with pytest.raises(SettingsError, match="api_key"):
        DemoSettings(app_env="production", secret_source="dapr").with_secrets(lambda n, k: "changethis")
    dev = DemoSettings(app_env="development", secret_source="env", api_key="changethis").with_secrets(
        lambda n, k: "unused")
    assert dev.api_key == "changethis"


def test_secret_from_a_file_in_local_runs(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "key"
    secret.write_text("from-file\n")
    monkeypatch.setenv("API_KEY_FILE", str(secret))
    assert DemoSettings(app_env="development").api_key == "from-file"
    monkeypatch.setenv("API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match="API_KEY_FILE"):
        DemoSettings(app_env="development")


def test_environment_values_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "99999")
    with pytest.raises(ValidationError, match="port"):
        DemoSettings(app_env="development")
