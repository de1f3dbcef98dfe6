"""Next-instance selection: what the worker asks the backend to create after a completion."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.worker.planning import NotPlannable, plan_next
from tests.utils.events import snapshot


def test_daily_series_moves_one_day_and_keeps_the_task() -> None:
    task = snapshot(rule="FREQ=DAILY", due_at=datetime(2026, 12, 1, 8, tzinfo=UTC), reminder_offset_minutes=10)
    plan = plan_next(task)
    assert plan is not None
    assert plan.due_at == datetime(2026, 12, 2, 8, tzinfo=UTC)
    assert plan.occurrence_index == 2
    assert task.recurrence is not None
    assert plan.idempotency_key == f"{task.recurrence.series_id}:2"
    body = plan.model_dump(mode="json")  # what the worker sends the backend
    assert body["owner_id"] == "alice"
    assert body["title"] == "Water plants"
    assert body["tags"] == ["home"]
    assert body["reminder_offset_minutes"] == 10
    assert body["recurrence_rule"] == "FREQ=DAILY"
    assert body["series_start"] == "2026-12-01T08:00:00Z"


def test_wall_clock_survives_dst_in_the_tasks_zone() -> None:
    # 09:00 in Berlin the day before the 2027-03-28 spring-forward: 08:00 UTC, then 07:00 UTC.
    due = datetime(2027, 3, 27, 8, tzinfo=UTC)
    plan = plan_next(snapshot(rule="FREQ=DAILY", tz="Europe/Berlin", due_at=due))
    assert plan is not None
    assert plan.due_at == datetime(2027, 3, 28, 7, tzinfo=UTC)


def test_month_end_uses_the_last_day_rule() -> None:
    due = datetime(2027, 1, 31, 12, tzinfo=UTC)
    plan = plan_next(snapshot(rule="FREQ=MONTHLY;BYMONTHDAY=-1", due_at=due))
    assert plan is not None
    assert plan.due_at == datetime(2027, 2, 28, 12, tzinfo=UTC)


def test_late_completion_walks_the_series_one_occurrence_at_a_time() -> None:
    # The third instance (index 3) is completed long after its date: the next is index 4, the day after it.
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    task = snapshot(rule="FREQ=DAILY", series_start=start, due_at=datetime(2026, 12, 3, 8, tzinfo=UTC),
                    occurrence_index=3)
    plan = plan_next(task)
    assert plan is not None
    assert plan.occurrence_index == 4
    assert plan.due_at == datetime(2026, 12, 4, 8, tzinfo=UTC)


@pytest.mark.parametrize(("rule", "index", "due", "ends"), [
    ("FREQ=DAILY;COUNT=3", 2, datetime(2026, 12, 2, 8, tzinfo=UTC), False),
    ("FREQ=DAILY;COUNT=3", 3, datetime(2026, 12, 3, 8, tzinfo=UTC), True),
    ("FREQ=DAILY;UNTIL=20261202T080000Z", 1, datetime(2026, 12, 1, 8, tzinfo=UTC), False),
    ("FREQ=DAILY;UNTIL=20261202T080000Z", 2, datetime(2026, 12, 2, 8, tzinfo=UTC), True),
])
def test_count_and_until_end_the_series(rule: str, index: int, due: datetime, ends: bool) -> None:
    task = snapshot(rule=rule, series_start=datetime(2026, 12, 1, 8, tzinfo=UTC), due_at=due,
                    occurrence_index=index)
    assert (plan_next(task) is None) is ends


def test_unplannable_snapshots_are_refused_with_a_reason() -> None:
    with pytest.raises(NotPlannable, match="not recurring"):
        plan_next(snapshot())
    with pytest.raises(NotPlannable, match="no due date"):
        plan_next(snapshot(rule="FREQ=DAILY", due_at=None, series_start=datetime(2026, 12, 1, tzinfo=UTC)))
    with pytest.raises(NotPlannable, match="FREQ"):
        plan_next(snapshot(rule="FREQ=HOURLY"))
