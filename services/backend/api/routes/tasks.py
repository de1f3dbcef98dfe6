"""/api/tasks: create, list, get, update, complete, delete, always scoped to the caller."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import TracebackType
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from services.backend import crud
from services.backend.api.deps import IfMatch, Reader, ReadSessions, Sessions, Writer, in_session
from services.backend.models import Task
from services.backend.schemas import TaskCreate, TaskList, TaskPublic, TaskUpdate
from services.platform.database import write_transaction
from services.platform.problems import invalid, problem_responses

# Every route: a token (401), its scope (403), the identity provider's keys (503), valid input (422).
router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=problem_responses(401, 403, 422, 503))

IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=255)]

_ETAG = {"ETag": {"description": 'the task\'s version, e.g. "3": send it in If-Match to refuse lost updates',
                  "required": True, "schema": {"type": "string"}}}
_NOT_FOUND = {404: "No such task (another user's task is not found either)"}
_UNPARSEABLE = {400: "The body is not JSON in UTF-8"}
_BAD_IF_MATCH = {400: 'If-Match is not an ETag such as "3"'}
_STALE = {412: "If-Match names an older version than the task's"}
_CONCURRENT = "Another request changed the task at the same time: read it again"


def _public(task: Task | Row[Any], response: Response) -> TaskPublic:
    response.headers["ETag"] = f'"{task.version}"'
    return TaskPublic.model_validate(task)


def _not_found(task_id: object) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")


# The routes are coroutines that hand all their database work to one worker thread (`in_session`):
# FastAPI then validates and serialises the answer on the event loop, where a sync route took a
# second thread hop for it.


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TaskPublic, responses={
    201: {"description": "Created, or the task an earlier request with this Idempotency-Key created", "headers": {
        **_ETAG,
        "Location": {"description": "the task's URL", "required": True, "schema": {"type": "string"}},
        "Idempotent-Replayed": {"description": "`true` when the answer is a replay", "schema": {"type": "string"}},
    }},
    **problem_responses(said={
        **_UNPARSEABLE,
        409: "Another request with the same Idempotency-Key is being processed: retry",
        410: "The task created with this Idempotency-Key was deleted",
        422: "Invalid input, or an Idempotency-Key already used with a different body",
    }),
})
async def create_task(body: TaskCreate, principal: Writer, sessions: Sessions, response: Response,
                      idempotency_key: IdempotencyKey = None) -> TaskPublic:
    """Create a task. With `Idempotency-Key`, a retried request returns the first one's task."""

    def create(session: Session) -> TaskPublic:
        with _task_errors(None), write_transaction(session):
            if idempotency_key:
                fingerprint = crud.request_fingerprint(body.model_dump(mode="json"))
                previous = crud.find_idempotent(session, owner_id=principal.user_id, key=idempotency_key)
                if previous is not None:
                    if previous.request_hash != fingerprint:
                        raise invalid(["header", "Idempotency-Key"], "was already used with a different request",
                                      "idempotency_key_reused")
                    if previous.task_id is None:
                        raise HTTPException(status.HTTP_410_GONE, "the task created with this key was deleted")
                    response.headers["Idempotent-Replayed"] = "true"
                    task = crud.get_task(session, owner_id=principal.user_id, task_id=previous.task_id)
                    response.headers["Location"] = f"/api/tasks/{task.id}"
                    return _public(task, response)
            task = crud.create_task(session, owner_id=principal.user_id, data=body)
            if idempotency_key:
                crud.remember_idempotent(session, owner_id=principal.user_id, key=idempotency_key,
                                         fingerprint=fingerprint, task_id=task.id)
        response.headers["Location"] = f"/api/tasks/{task.id}"
        return _public(task, response)

    return await in_session(sessions, create)


@router.get("", response_model=TaskList)
async def list_tasks(
    principal: Reader, sessions: ReadSessions,
    status_filter: Annotated[str | None, Query(alias="status", pattern="^(pending|completed)$")] = None,
    due_after: datetime | None = None,
    due_before: datetime | None = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    sort: crud.SortKey = "created_at",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TaskList:
    for name, value in (("due_after", due_after), ("due_before", due_before)):
        if value is not None and value.tzinfo is None:
            raise invalid(["query", name], "must include a timezone offset, e.g. 2026-12-01T09:00:00+01:00")

    def read(session: Session) -> TaskList:
        items, total = crud.list_tasks(session, owner_id=principal.user_id, status=status_filter,
                                       due_after=due_after, due_before=due_before, tag=tag, sort=sort,
                                       limit=limit, offset=offset)
        return TaskList(items=[TaskPublic.model_validate(t) for t in items], total=total, limit=limit, offset=offset)

    return await in_session(sessions, read)


@router.get("/{task_id}", response_model=TaskPublic,
            responses={200: {"headers": _ETAG}, **problem_responses(said=_NOT_FOUND)})
async def get_task(task_id: uuid.UUID, principal: Reader, sessions: ReadSessions, response: Response) -> TaskPublic:
    def read(session: Session) -> TaskPublic:
        with _task_errors(task_id):
            return _public(crud.read_task(session, owner_id=principal.user_id, task_id=str(task_id)), response)

    return await in_session(sessions, read)


@router.patch("/{task_id}", response_model=TaskPublic, responses={200: {"headers": _ETAG}, **problem_responses(said={
    400: "The body is not JSON in UTF-8, or If-Match is not an ETag such as \"3\"", **_NOT_FOUND, **_STALE,
    409: f"A recurrence rule or reminder offset without a due date. {_CONCURRENT}"})})
async def update_task(task_id: uuid.UUID, body: TaskUpdate, principal: Writer, sessions: Sessions,
                      response: Response, version: IfMatch) -> TaskPublic:
    """Partial update; send `If-Match` with the ETag you read to refuse lost updates (412)."""

    def update(session: Session) -> TaskPublic:
        with _task_errors(task_id), write_transaction(session):
            task = crud.update_task(session, owner_id=principal.user_id, task_id=str(task_id), changes=body,
                                    expected_version=version)
        return _public(task, response)

    return await in_session(sessions, update)


@router.post("/{task_id}/complete", response_model=TaskPublic, responses={200: {"headers": _ETAG},
             **problem_responses(said={**_BAD_IF_MATCH, **_NOT_FOUND, **_STALE,
                                       409: f"The task is already completed. {_CONCURRENT}"})})
async def complete_task(task_id: uuid.UUID, principal: Writer, sessions: Sessions, response: Response,
                        version: IfMatch) -> TaskPublic:
    def complete(session: Session) -> TaskPublic:
        with _task_errors(task_id), write_transaction(session):
            task = crud.complete_task(session, owner_id=principal.user_id, task_id=str(task_id),
                                      expected_version=version)
        return _public(task, response)

    return await in_session(sessions, complete)


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(said={
    **_BAD_IF_MATCH, **_NOT_FOUND, **_STALE, 409: _CONCURRENT}))
async def delete_task(task_id: uuid.UUID, principal: Writer, sessions: Sessions, version: IfMatch) -> Response:
    def delete(session: Session) -> None:
        with _task_errors(task_id), write_transaction(session):
            crud.delete_task(session, owner_id=principal.user_id, task_id=str(task_id), expected_version=version)

    await in_session(sessions, delete)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class _task_errors:
    """Maps domain errors to HTTP answers: 404, 412 (If-Match), 409 (state or a concurrent write).

    Entered before the transaction, so errors raised at commit are mapped too.
    """

    def __init__(self, task_id: object) -> None:
        self.task_id = task_id

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            return
        if isinstance(exc, crud.TaskNotFound):
            raise _not_found(self.task_id) from None
        if isinstance(exc, crud.PreconditionFailed):
            raise HTTPException(status.HTTP_412_PRECONDITION_FAILED, str(exc),
                                headers={"ETag": f'"{exc.current_version}"'}) from None
        if isinstance(exc, crud.InvalidTransition):
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        if isinstance(exc, StaleDataError):
            raise HTTPException(status.HTTP_409_CONFLICT, "task was changed concurrently; read it again") from None
        if isinstance(exc, IntegrityError):
            raise HTTPException(status.HTTP_409_CONFLICT, "conflicting concurrent request; retry") from None
