"""Backend settings: one instance per process, secrets through the Dapr secret store in the cluster."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from services.platform.database import DatabaseSettings
from services.platform.settings import SettingsError
from services.platform.web_auth import UserAuthSettings


class BackendSettings(UserAuthSettings, DatabaseSettings):
    SECRET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {
        **UserAuthSettings.SECRET_FIELDS,
        "database_url": ("todo-db", "url"),
        "internal_api_token": ("todo-internal", "token"),
    }

    service_name: str = "backend"

    auth_dev_mode: bool = False
    # Shared by the services that call internal routes through Dapr (the worker).
    internal_api_token: str | None = None

    relay_enabled: bool = True
    relay_poll_interval_s: float = Field(1.0, gt=0)
    relay_batch_size: int = Field(100, ge=1, le=1000)
    relay_max_backoff_s: float = Field(10.0, gt=0)
    relay_lease_ttl_s: float = Field(15.0, gt=0)
    relay_concurrency: int = Field(16, ge=1, le=256)

    @model_validator(mode="after")
    def _dev_tokens_only_in_development(self) -> BackendSettings:
        if self.auth_dev_mode and not self.is_development:
            raise SettingsError("AUTH_DEV_MODE=true is only allowed with APP_ENV=development")
        if self.auth_dev_mode and self.jwks_url:
            raise SettingsError("AUTH_DEV_MODE=true mints HS256 tokens, which JWKS_URL refuses: unset one")
        if self.relay_lease_ttl_s < 3 * self.dapr_timeout_s:
            raise SettingsError("RELAY_LEASE_TTL_S must be at least 3 x DAPR_TIMEOUT_S, or a slow publish "
                                "could outlive the relay lease and two replicas would publish at once")
        return self
