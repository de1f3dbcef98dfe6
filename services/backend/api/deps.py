"""Dependency-injection providers for the routes, exported as `Annotated` aliases."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, HTTPException, Request, status
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from services.backend.config import BackendSettings
from services.platform.auth import Principal
from services.platform.deps import get_database, state_provider
from services.platform.scopes import TASKS_READ, TASKS_WRITE
from services.platform.web_auth import bearer_principal

T = TypeVar("T")

_ETAG_RE = re.compile(r'^(?:W/)?"?(\d{1,12})"?$')

get_settings = state_provider("settings", BackendSettings)


async def get_sessions(request: Request) -> sessionmaker[Session]:
    """The database's session factory. A coroutine, so FastAPI resolves it on the event loop."""
    return get_database(request).sessions


async def get_read_sessions(request: Request) -> sessionmaker[Session]:
    """The factory of sessions that only read (see Database.read_sessions): no transaction on PostgreSQL."""
    return get_database(request).read_sessions


async def in_session(sessions: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """`work(session)` on a worker thread, with a session opened and closed in that same call.

    One thread hop per request, for all of its database work. A session dependency that yields was
    a second hop (or, closing on the event loop, an exit stack per request); a sync route was two
    (FastAPI validates a sync route's answer on a worker thread too). Closing in the same call also
    keeps the pool from deadlocking: a connection is never held by a request waiting for a thread.
    Write work commits inside with `write_transaction(session)`.
    """

    def run() -> T:
        with sessions() as session:
            return work(session)

    return await run_in_threadpool(run)


def require_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """The token must carry this scope (403 otherwise); a token without any scope claim has none.

    This and `expected_version` are coroutines only so that FastAPI runs them on the event loop:
    a plain function dependency costs a worker-thread round trip per request."""

    async def check(principal: Annotated[Principal, Depends(bearer_principal)]) -> Principal:
        if scope not in principal.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"token lacks scope {scope!r}")
        return principal

    return check


IfMatchHeader = Annotated[str | None, Header(
    alias="If-Match", description='the ETag you read, e.g. "3", or `*`: the change is refused (412) if the task '
                                  "has changed since", json_schema_extra={"pattern": rf"{_ETAG_RE.pattern}|^\*$"})]


async def expected_version(if_match: IfMatchHeader = None) -> int | None:
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
Sessions = Annotated[sessionmaker[Session], Depends(get_sessions)]
ReadSessions = Annotated[sessionmaker[Session], Depends(get_read_sessions)]
Reader = Annotated[Principal, Depends(require_scope(TASKS_READ))]
Writer = Annotated[Principal, Depends(require_scope(TASKS_WRITE))]
IfMatch = Annotated[int | None, Depends(expected_version)]
