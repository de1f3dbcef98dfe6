"""Dependency-injection providers for the audit routes and handlers, exported as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from services.audit.config import AuditSettings
from services.platform.auth import Principal
from services.platform.deps import get_database, state_provider
from services.platform.web_auth import bearer_principal

get_settings = state_provider("settings", AuditSettings)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A read-only session per request (the API never writes the audit log), closed on the event
    loop: a sync dependency's exit needs a free worker thread to give the connection back, and
    under load none was free (see services/backend/api/deps.py)."""
    session = get_database(request).read_sessions()
    try:
        yield session
    finally:
        session.close()


SettingsDep = Annotated[AuditSettings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
Caller = Annotated[Principal, Depends(bearer_principal)]
