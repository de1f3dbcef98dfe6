"""The contract of the internal routes services call on each other through Dapr service invocation.

Beside the event contract for the same reason: the caller and the callee are different services,
and one definition keeps them from drifting apart. The backend serves these routes (never
through the ingress); the worker and the notification service call them, with the token shared
through the secret store (`todo-internal`) in `INTERNAL_TOKEN_HEADER`.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.platform.events import Priority

INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 (a header name)
NEXT_OCCURRENCE_METHOD = "internal/recurrences/next"  # POST, body NextOccurrence
TASK_METHOD = "internal/tasks/{task_id}"  # GET: any owner's task, as the task API shows it


class NextOccurrence(BaseModel):
    """The next instance of a recurring series, as the worker computes it with the shared recurrence
    engine. The backend keeps one task per (series_id, occurrence_index), so asking twice is safe;
    it validates the task fields as it validates any new task."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner_id: str = Field(min_length=1, max_length=255)
    title: str
    description: str = ""
    priority: Priority = "medium"
    tags: list[str] = Field(default_factory=list)
    due_at: AwareDatetime
    timezone: str
    reminder_offset_minutes: int | None = None
    recurrence_rule: str = Field(min_length=1, max_length=500)
    series_id: str = Field(min_length=1, max_length=36)
    series_start: AwareDatetime
    occurrence_index: int = Field(ge=2)

    @property
    def idempotency_key(self) -> str:
        """Deterministic per occurrence: the same completion always asks for the same key."""
        return f"{self.series_id}:{self.occurrence_index}"
