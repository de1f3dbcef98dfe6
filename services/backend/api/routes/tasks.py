"""/api/tasks: create, list, get, update, complete, delete, always scoped to the caller."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import TracebackType
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from services.backend import crud
from services.backend.api.deps import IfMatch, Reader, SessionDep, Writer
from services.backend.models import Task
from services.backend.schemas import TaskCreate, TaskList, TaskPublic, TaskUpdate
from services.platform.database import write_transaction

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=255)]


def _public(task: Task, response: Response) -> TaskPublic:
    response.headers["ETag"] = f'"{task.version}"'
    return TaskPublic.model_validate(task)


def _not_found(task_id: object) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TaskPublic)
def create_task(body: TaskCreate, principal: Writer, session: SessionDep, response: Response,
                idempotency_key: IdempotencyKey = None) -> TaskPublic:
    """Create a task. With `Idempotency-Key`, a retried request returns the first one's task."""
    with _task_errors(None), write_transaction(session):
        if idempotency_key:
            fingerprint = crud.request_fingerprint(body.model_dump(mode="json"))
            previous = crud.find_idempotent(session, owner_id=principal.user_id, key=idempotency_key)
            if previous is not None:
                if previous.request_hash != fingerprint:
                    raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                        "Idempotency-Key was already used with a different request")
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


@router.get("", response_model=TaskList)
def list_tasks(
    principal: Reader, session: SessionDep,
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
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name} must include a timezone offset")
    items, total = crud.list_tasks(session, owner_id=principal.user_id, status=status_filter,
                                   due_after=due_after, due_before=due_before, tag=tag, sort=sort,
                                   limit=limit, offset=offset)
    return TaskList(items=[TaskPublic.model_validate(t) for t in items], total=total, limit=limit, offset=offset)


@router.get("/{task_id}", response_model=TaskPublic)
def get_task(task_id: uuid.UUID, principal: Reader, session: SessionDep, response: Response) -> TaskPublic:
    try:
        return _public(crud.get_task(session, owner_id=principal.user_id, task_id=str(task_id)), response)
    except crud.TaskNotFound:
        raise _not_found(task_id) from None


@router.patch("/{task_id}", response_model=TaskPublic)
def update_task(task_id: uuid.UUID, body: TaskUpdate, principal: Writer, session: SessionDep,
                response: Response, version: IfMatch) -> TaskPublic:
    """Partial update; send `If-Match` with the ETag you read to refuse lost updates (412)."""
    with _task_errors(task_id), write_transaction(session):
        task = crud.update_task(session, owner_id=principal.user_id, task_id=str(task_id), changes=body,
                                expected_version=version)
    return _public(task, response)


@router.post("/{task_id}/complete", response_model=TaskPublic)
def complete_task(task_id: uuid.UUID, principal: Writer, session: SessionDep, response: Response,
                  version: IfMatch) -> TaskPublic:
    with _task_errors(task_id), write_transaction(session):
        task = crud.complete_task(session, owner_id=principal.user_id, task_id=str(task_id),
                                  expected_version=version)
    return _public(task, response)


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_task(task_id: uuid.UUID, principal: Writer, session: SessionDep, version: IfMatch) -> Response:
    with _task_errors(task_id), write_transaction(session):
        crud.delete_task(session, owner_id=principal.user_id, task_id=str(task_id), expected_version=version)
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
