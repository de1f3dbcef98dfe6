"""Dependency-injection providers for the routes, exported as `Annotated` aliases."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from sqlalchemy.orm import Session

from services.backend.config import BackendSettings
from services.platform.auth import Principal
from services.platform.deps import get_database, state_provider
from services.platform.scopes import TASKS_READ, TASKS_WRITE
from services.platform.web_auth import bearer_principal

_ETAG_RE = re.compile(r'^(?:W/)?"?(\d{1,12})"?$')

get_settings = state_provider("settings", BackendSettings)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request, closed on the event loop.

    FastAPI runs a sync dependency's exit in another worker-thread call. Under load every worker
    thread was waiting for a pooled connection (or SQLite's write lock) that a finished request
    would only give back in that exit: the pool deadlocked. Closing here needs no thread, and
    write routes commit inside their own thread (`with write_transaction(session)`).
    """
    session = get_database(request).sessions()
    try:
        yield session
    finally:
        session.close()


def require_scope(scope: str) -> Callable[[Principal], Principal]:
    """The token must carry this scope (403 otherwise); a token without any scope claim has none."""

    def check(principal: Annotated[Principal, Depends(bearer_principal)]) -> Principal:
        if scope not in principal.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"token lacks scope {scope!r}")
        return principal

    return check


IfMatchHeader = Annotated[str | None, Header(
    alias="If-Match", description='the ETag you read, e.g. "3", or `*`: the change is refused (412) if the task '
                                  "has changed since", json_schema_extra={"pattern": rf"{_ETAG_RE.pattern}|^\*$"})]


def expected_version(if_match: IfMatchHeader = None) -> int | None:
    """The version named by If-Match (our ETags are the task version), None when absent or `*`.

    The pattern is documented, but checked here rather than by FastAPI: a malformed If-Match is a
    400 (a malformed header), not a 422."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG_RE.match(if_match.strip())
    if not match:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, 'If-Match must be an ETag such as "3"')
    return int(match.group(1))


SettingsDep = Annotated[BackendSettings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
Reader = Annotated[Principal, Depends(require_scope(TASKS_READ))]
Writer = Annotated[Principal, Depends(require_scope(TASKS_WRITE))]
IfMatch = Annotated[int | None, Depends(expected_version)]
