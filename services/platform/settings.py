"""Settings from the environment, with secrets from the Dapr secret store in the cluster.

Every service subclasses `ServiceSettings` and instantiates it once. Fields named in
`SECRET_FIELDS` are secrets: in the cluster (`SECRET_SOURCE=dapr`, required in production,
FR-D14/FR-H09) they are read through the sidecar's secret store after start-up; in local
runs they come from the environment or from a file named by `<FIELD>_FILE`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changethis", "change-me", "secret", "dev-secret"})

SecretFetcher = Callable[[str, str], str]
"""(secret name, key) -> value; raises if the store has no such secret."""


class SettingsError(ValueError):
    """Configuration that must not run; the message names the variable to fix."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    # field name -> (secret name, key) in the secret store.
    SECRET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {}

    service_name: str = "service"
    port: int = Field(8000, ge=1, le=65535)
    app_env: Literal["development", "production"] = "production"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    secret_source: Literal["env", "dapr"] = "env"

    dapr_http_port: int = Field(3500, ge=1, le=65535)
    dapr_grpc_port: int = Field(50001, ge=1, le=65535)
    dapr_timeout_s: float = Field(5.0, gt=0)
    pubsub_name: str = "kafka-pubsub"
    statestore_name: str = "statestore"
    secretstore_name: str = "secretstore"

    def secret_fields(self) -> dict[str, tuple[str, str]]:
        """The secrets these settings need (SECRET_FIELDS, less those the configuration makes unused)."""
        return self.SECRET_FIELDS

    @property
    def is_development(self) -> bool:
        return self.app_env == "development"

    @model_validator(mode="after")
    def _secrets_from_the_store_in_production(self) -> ServiceSettings:
        if self.app_env == "production" and self.secret_source != "dapr":
            raise SettingsError(
                "APP_ENV=production requires SECRET_SOURCE=dapr: secrets are read through the Dapr "
                "secret store in the cluster, never from plain environment variables"
            )
        if self.secret_source == "env":
            for field in self.secret_fields():
                file_var = f"{field.upper()}_FILE"
                path = os.environ.get(file_var)
                if path and not getattr(self, field):
                    try:
                        object.__setattr__(self, field, Path(path).read_text().strip())
                    except OSError as exc:
                        raise SettingsError(f"{file_var}={path}: {exc.strerror}") from exc
        return self

    def with_secrets(self, fetch: SecretFetcher) -> Self:
        """A copy with every secret field filled from the store (cluster mode only).

        Placeholder values are refused outside development, as the FastAPI template does:
        a forgotten template secret must stop the service, not run it.
        """
        values = {}
        if self.secret_source == "dapr":
            for field, (name, key) in self.secret_fields().items():
                values[field] = fetch(name, key)
        resolved = self.model_copy(update=values)
        if not resolved.is_development:
            for field in resolved.secret_fields():
                if str(getattr(resolved, field) or "").strip().lower() in PLACEHOLDER_SECRETS:
                    raise SettingsError(f"{field} is empty or a placeholder; set a real secret")
        return resolved

