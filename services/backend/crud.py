"""Task operations. Each runs inside the caller's transaction and writes its outbox events there.

Keyword-only functions shared by the routes, the tests and (through the API) the worker.
Every query takes `owner_id`: a task of another user is indistinguishable from a missing one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, exists, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute, Session

from services.backend import outbox
from services.backend.models import IdempotencyRecord, Task
from services.backend.reminders import remind_at
from services.backend.schemas import TaskCreate, TaskUpdate

SortKey = Literal["due_at", "-due_at", "created_at", "-created_at", "priority", "-priority", "title", "-title"]
_PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2, "urgent": 3}


class TaskNotFound(LookupError):
    pass


class PreconditionFailed(Exception):
    """The client's If-Match version is not the current one."""

    def __init__(self, current_version: int) -> None:
        super().__init__(f"task changed since you read it (current version {current_version})")
        self.current_version = current_version


class InvalidTransition(Exception):
    """The change is valid in form but not in the task's state (e.g. completing twice)."""


@dataclass(frozen=True)
class SeriesLink:
    """How a new task joins a recurring series (set by the worker for the next instance)."""

    series_id: str
    series_start: datetime
    occurrence_index: int


def create_task(session: Session, *, owner_id: str, data: TaskCreate, series: SeriesLink | None = None) -> Task:
    now = datetime.now(UTC)
    task_id = str(uuid.uuid4())
    task = Task(
        id=task_id, owner_id=owner_id, title=data.title, description=data.description,
        priority=data.priority, tags=list(data.tags), status="pending", due_at=data.due_at,
        timezone=data.timezone, reminder_offset_minutes=data.reminder_offset_minutes,
        recurrence_rule=data.recurrence_rule, created_at=now, updated_at=now, completed_at=None,
    )
    if data.recurrence_rule:
        link = series or SeriesLink(task_id, data.due_at, 1)  # type: ignore[arg-type]
        task.series_id, task.series_start, task.occurrence_index = (
            link.series_id, link.series_start, link.occurrence_index)
    session.add(task)
    session.flush()
    outbox.enqueue_task_change(session, task=task, action="created", changed_fields=[], reminder_was=None)
    return task


def get_task(session: Session, *, owner_id: str, task_id: str) -> Task:
    task = session.scalar(select(Task).where(Task.id == task_id, Task.owner_id == owner_id))
    if task is None:
        raise TaskNotFound(task_id)
    return task


def list_tasks(
    session: Session, *, owner_id: str, status: str | None = None, due_after: datetime | None = None,
    due_before: datetime | None = None, tag: str | None = None, sort: SortKey = "created_at",
    limit: int = 50, offset: int = 0,
) -> tuple[list[Task], int]:
    query = select(Task).where(Task.owner_id == owner_id)
    if status:
        query = query.where(Task.status == status)
    if due_after:
        query = query.where(Task.due_at >= due_after)
    if due_before:
        query = query.where(Task.due_at < due_before)
    if tag:
        query = query.where(_has_tag(session, tag))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = sort.lstrip("-")
    order: ColumnElement[Any] | InstrumentedAttribute[Any]
    order = case(_PRIORITY_RANK, value=Task.priority) if column == "priority" else getattr(Task, column)
    order = order.desc() if sort.startswith("-") else order.asc()
    items = session.scalars(query.order_by(order.nulls_last(), Task.id).limit(limit).offset(offset)).all()
    return list(items), int(total)


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    """`tag` is one of the task's tags, tested in the database: JSONB containment on PostgreSQL,
    a scan of the JSON array (json_each) on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(Task.tags, JSONB).contains([tag])
    each = func.json_each(Task.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def _check_version(task: Task, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != task.version:
        raise PreconditionFailed(task.version)


def update_task(session: Session, *, owner_id: str, task_id: str, changes: TaskUpdate,
                expected_version: int | None = None) -> Task:
    task = get_task(session, owner_id=owner_id, task_id=task_id)
    _check_version(task, expected_version)
    fields = changes.model_dump(exclude_unset=True)
    new_due = fields.get("due_at", task.due_at)
    if new_due is None and (fields.get("recurrence_rule", task.recurrence_rule) or
                            fields.get("reminder_offset_minutes", task.reminder_offset_minutes) is not None):
        raise InvalidTransition("a task with a recurrence rule or reminder offset needs due_at")
    changed = sorted(name for name, value in fields.items() if getattr(task, name) != value)
    if not changed:
        return task
    reminder_was = remind_at(task)
    for name in changed:
        setattr(task, name, fields[name])
    if "recurrence_rule" in changed:
        if task.recurrence_rule and not task.series_id:
            task.series_id, task.series_start, task.occurrence_index = task.id, task.due_at, 1
        elif not task.recurrence_rule:
            task.series_id = task.series_start = task.occurrence_index = None
    task.updated_at = datetime.now(UTC)
    session.flush()
    outbox.enqueue_task_change(session, task=task, action="updated", changed_fields=changed,
                               reminder_was=reminder_was)
    return task


def complete_task(session: Session, *, owner_id: str, task_id: str, expected_version: int | None = None) -> Task:
    task = get_task(session, owner_id=owner_id, task_id=task_id)
    _check_version(task, expected_version)
    if task.status == "completed":
        raise InvalidTransition("task is already completed")
    reminder_was = remind_at(task)
    now = datetime.now(UTC)
    task.status, task.completed_at, task.updated_at = "completed", now, now
    session.flush()
    outbox.enqueue_task_change(session, task=task, action="completed", changed_fields=["status"],
                               reminder_was=reminder_was)
    return task


def delete_task(session: Session, *, owner_id: str, task_id: str, expected_version: int | None = None) -> None:
    task = get_task(session, owner_id=owner_id, task_id=task_id)
    _check_version(task, expected_version)
    outbox.enqueue_task_change(session, task=task, action="deleted", changed_fields=[],
                               reminder_was=remind_at(task))
    session.delete(task)
    session.flush()


def request_fingerprint(payload: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def find_idempotent(session: Session, *, owner_id: str, key: str) -> IdempotencyRecord | None:
    return session.get(IdempotencyRecord, (owner_id, key))


def remember_idempotent(session: Session, *, owner_id: str, key: str, fingerprint: str, task_id: str) -> None:
    session.add(IdempotencyRecord(owner_id=owner_id, key=key, request_hash=fingerprint, task_id=task_id,
                                  status_code=201, created_at=datetime.now(UTC)))
    session.flush()
