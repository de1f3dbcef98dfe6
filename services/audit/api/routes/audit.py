"""GET /api/audit: query the audit log, filtered and paginated.

Who sees what: a token with scope `audit:read` (operators) may query every user's entries and
filter by any `user_id`; a token with `tasks:read` sees only its own entries (its `sub`), and
asking for another user's is a 403; a token with neither scope (or no scope claim) sees nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, field_validator

from services.audit import store
from services.audit.api.deps import Caller, SessionDep, SettingsDep
from services.platform.problems import invalid, problem_responses
from services.platform.scopes import AUDIT_READ, TASKS_READ

OPERATOR_SCOPE = AUDIT_READ
OWNER_SCOPE = TASKS_READ

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=problem_responses(401, 422, 503, said={
    403: f"The token has neither {OWNER_SCOPE!r} nor {OPERATOR_SCOPE!r}, or asks for another user's entries "
         f"without {OPERATOR_SCOPE!r}"}))


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    recorded_at: datetime
    user_id: str
    action: str
    entity_type: str
    entity_id: str
    event_id: str
    topic: str
    event_type: str
    source: str
    correlation_id: str | None
    payload: dict[str, Any]

    @field_validator("occurred_at", "recorded_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # SQLite returns the stored UTC wall time without an offset.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AuditPage(BaseModel):
    items: list[AuditEntryPublic]
    total: int
    limit: int
    offset: int


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid(["query", name], "must include a timezone offset, e.g. 2026-12-01T09:00:00Z")
    return value


Text = Annotated[str | None, Query(min_length=1, max_length=255)]


@router.get("", response_model=AuditPage)
def list_entries(
    settings: SettingsDep, session: SessionDep, caller: Caller,
    user_id: Text = None, action: Text = None, entity_type: Text = None, entity_id: Text = None,
    event_type: Text = None, topic: Text = None, correlation_id: Text = None,
    since: Annotated[datetime | None, Query(description="occurred at or after (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="occurred before (exclusive)")] = None,
    limit: Annotated[int, Query(ge=1)] = 50, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditPage:
    if OPERATOR_SCOPE not in caller.scopes:
        if OWNER_SCOPE not in caller.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"token lacks scope {OWNER_SCOPE!r} or {OPERATOR_SCOPE!r}")
        if user_id is not None and user_id != caller.user_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"other users' entries need scope {OPERATOR_SCOPE!r}")
        user_id = caller.user_id
    since, until = _aware(since, "since"), _aware(until, "until")
    if since is not None and until is not None and since >= until:
        raise invalid(["query", "since"], "must be before until")
    max_page = settings.max_page_size
    if limit > max_page:
        raise invalid(["query", "limit"], f"must be at most {max_page}")
    filters = store.Filters(user_id=user_id, action=action, entity_type=entity_type, entity_id=entity_id,
                            event_type=event_type, topic=topic, correlation_id=correlation_id,
                            since=since, until=until)
    rows, total = store.search(session, filters=filters, limit=limit, offset=offset)
    return AuditPage(items=[AuditEntryPublic.model_validate(r) for r in rows], total=total,
                     limit=limit, offset=offset)
