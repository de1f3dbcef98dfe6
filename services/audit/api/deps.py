"""Dependency-injection providers for the audit routes, exported as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from services.platform.auth import Principal
from services.platform.web_auth import bearer_principal


def get_session(request: Request) -> Iterator[Session]:
    """A read-only session per request (the API never writes the audit log)."""
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
Caller = Annotated[Principal, Depends(bearer_principal)]
