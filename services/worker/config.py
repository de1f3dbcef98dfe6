"""Worker settings: one instance per process, the internal token through the Dapr secret store."""

from __future__ import annotations

from typing import ClassVar

from services.platform.settings import ServiceSettings


class WorkerSettings(ServiceSettings):
    SECRET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {"internal_api_token": ("todo-internal", "token")}

    service_name: str = "worker"
    # The backend's app-id for service invocation, and the token its /internal routes demand.
    backend_app_id: str = "backend"
    internal_api_token: str | None = None
