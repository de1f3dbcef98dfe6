"""The event-rate history: seeded from Prometheus's range query, fed by instant samples, on one grid of whole steps."""

from __future__ import annotations

import pytest

from console.model.event_rates import RateHistory, ServiceRate, TopicHistory, TopicRates


def rates(topic: str, published: float, failed: float = 0.0) -> TopicRates:
    return TopicRates(topic, published=(ServiceRate("backend", published),),
                      failed=(ServiceRate("worker", failed, "drop"),) if failed else ())


def test_a_seed_then_samples_land_on_the_same_grid_the_newest_of_a_step_winning() -> None:
    history = RateHistory(range_s=60, points=6)  # a step of 10 s
    assert history.step == 10
    history.seed({"task-events": TopicHistory("task-events", published=((1000.0, 1.0), (1010.0, 2.0), (1020.0, 3.0)))})
    history.add(1021.0, [rates("task-events", 4.0)])  # belongs to the step at 1030
    history.add(1027.5, [rates("task-events", 5.0, failed=0.5)])  # the same step: the newer sample wins
    series = history.series(1028.0)["task-events"]
    assert [t for t, _ in series.published] == [980, 990, 1000, 1010, 1020, 1030]
    assert [v for _, v in series.published] == [0.0, 0.0, 1.0, 2.0, 3.0, 5.0]
    assert [v for _, v in series.failed] == [0.0] * 5 + [0.5]
    assert history.seeded


def test_old_steps_fall_off_and_a_new_topic_starts_empty_before_its_first_sample() -> None:
    history = RateHistory(range_s=60, points=6)
    for i in range(20):
        history.add(1000.0 + 10 * i, [rates("task-events", float(i))])
    history.add(1190.0, [rates("reminders", 7.0)])
    series = history.series(1190.0)
    assert [v for _, v in series["task-events"].published] == [14.0, 15.0, 16.0, 17.0, 18.0, 19.0]
    assert [v for _, v in series["reminders"].published] == [0.0] * 5 + [7.0]
    assert sum(map(len, history._values["task-events"].values())) <= 3 * 7  # memory stays bounded


def test_a_history_needs_a_range_and_points() -> None:
    with pytest.raises(ValueError, match="positive range and at least 2 points"):
        RateHistory(range_s=0)
