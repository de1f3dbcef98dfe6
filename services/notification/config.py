"""Notification settings: one instance per process, secrets through the Dapr secret store."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from services.platform.settings import ServiceSettings, SettingsError


class NotificationSettings(ServiceSettings):
    SECRET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {
        "internal_api_token": ("todo-internal", "token"),
        "webhook_secret": ("todo-notification", "webhook-secret"),
    }

    service_name: str = "notification"
    # The task is re-read from the backend when a reminder fires (deleted? completed? moved?).
    backend_app_id: str = "backend"
    internal_api_token: str | None = None

    notifier: Literal["log", "webhook"] = "log"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_timeout_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _webhook_needs_a_url(self) -> NotificationSettings:
        if self.notifier == "webhook" and not self.webhook_url:
            raise SettingsError("NOTIFIER=webhook needs WEBHOOK_URL")
        return self
