"""Audit settings: its own database, token verification shared with the backend."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.platform.database import DatabaseSettings
from services.platform.web_auth import UserAuthSettings


class AuditSettings(UserAuthSettings, DatabaseSettings):
    SECRET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {
        **UserAuthSettings.SECRET_FIELDS,
        "database_url": ("todo-audit-db", "url"),
    }

    service_name: str = "audit"
    database_url: str = "sqlite:///./audit.db"
    max_page_size: int = Field(500, ge=1, le=5000)
