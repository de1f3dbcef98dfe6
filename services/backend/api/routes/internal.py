"""Service-to-service routes, reached only through Dapr service invocation (never the ingress).

The worker creates the next instance of a recurring series here; the notification service reads
a task back when its reminder fires. The pair (series_id,
occurrence_index) is unique in the database, so however many times the worker (or two
worker replicas) asks for the same occurrence, exactly one task exists: the first request
creates it (201), every later one gets the same task back (200).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.backend import crud
from services.backend.api.deps import Sessions, SettingsDep, in_session
from services.backend.models import Task
from services.backend.schemas import TaskCreate, TaskPublic
from services.platform.database import write_transaction
from services.platform.internal_api import INTERNAL_TOKEN_HEADER, NextOccurrence
from services.platform.problems import problem_responses


def require_internal_caller(settings: SettingsDep,
                            token: Annotated[str | None, Header(alias=INTERNAL_TOKEN_HEADER)] = None) -> None:
    expected = settings.internal_api_token
    if not expected or not token or not hmac.compare_digest(expected, token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "internal route: missing or wrong internal token")


router = APIRouter(prefix="/internal", tags=["internal"], dependencies=[Depends(require_internal_caller)],
                   responses=problem_responses(422, said={403: f"Missing or wrong {INTERNAL_TOKEN_HEADER}"}))


@router.post("/recurrences/next", response_model=TaskPublic, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": TaskPublic, "description": "This occurrence existed already"},
                        **problem_responses(said={400: "The body is not JSON in UTF-8"})})
async def create_next_occurrence(body: NextOccurrence, sessions: Sessions, response: Response) -> TaskPublic:
    data = _task_fields(body)

    def create(session: Session) -> TaskPublic:
        with write_transaction(session):
            existing = _occurrence(session, body)
            if existing is None:
                link = crud.SeriesLink(body.series_id, body.series_start, body.occurrence_index)
                try:
                    with session.begin_nested():
                        existing = crud.create_task(session, owner_id=body.owner_id, data=data, series=link)
                except IntegrityError:  # a concurrent request created this occurrence first
                    existing = _occurrence(session, body)
                    if existing is None:
                        raise
                    response.status_code = status.HTTP_200_OK
            else:
                response.status_code = status.HTTP_200_OK
        response.headers["ETag"] = f'"{existing.version}"'
        return TaskPublic.model_validate(existing)

    return await in_session(sessions, create)


def _task_fields(body: NextOccurrence) -> TaskCreate:
    """The new task, validated as the task API validates any (a bad title or zone is a 422, not a 500)."""
    try:
        return TaskCreate.model_validate(body.model_dump(include=set(TaskCreate.model_fields)))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


def _occurrence(session: Session, body: NextOccurrence) -> Task | None:
    return session.scalar(select(Task).where(Task.series_id == body.series_id,
                                             Task.occurrence_index == body.occurrence_index))


@router.get("/tasks/{task_id}", response_model=TaskPublic, responses=problem_responses(said={404: "No such task"}))
async def read_task(task_id: str, sessions: Sessions, response: Response) -> TaskPublic:
    """Any owner's task, for the notification service to check a reminder when its job fires."""
    task = await in_session(sessions, lambda session: session.get(Task, task_id))
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "task not found")
    response.headers["ETag"] = f'"{task.version}"'
    return TaskPublic.model_validate(task)
