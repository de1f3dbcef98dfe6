"""The lag engine on crafted offset histories: every Burrow status, and every time-lag edge case the others got
wrong (an idle topic, a draining burst, a deleted record, a new partition, a rewind, a recreated topic)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from console.model.kafka import GroupOffsets, LagSnapshot, PartitionOffsets, TopicPartition
from console.model.lag import (
    EvalConfig,
    GroupStatus,
    LagHistory,
    PartitionStatus,
    evaluate,
    evaluate_partition,
    group_status,
)

TP = TopicPartition("task-events", 0)
DEFAULT = EvalConfig()
T0 = 1_800_000_000.0


def snap(at: float, end: int, committed: int | None, *, start: int = 0, record_time: float | None = None,
         members: int | None = 0, tp: TopicPartition = TP, group: str = "worker") -> LagSnapshot:
    times = {(tp, committed): record_time} if committed is not None and record_time is not None else {}
    return LagSnapshot(at, {tp: PartitionOffsets(start, end)},
                       {group: GroupOffsets(group, "Stable" if members else "Empty", members, {tp: committed})}, times)


def history_of(*snapshots: LagSnapshot) -> LagHistory:
    history = LagHistory()
    for s in snapshots:
        history.add(s)
    return history


def verdict(history: LagHistory, now: float | None = None, config: EvalConfig = DEFAULT,
            tp: TopicPartition = TP, group: str = "worker"):
    at = history.last_at if now is None else now
    assert at is not None
    return evaluate_partition(group, tp, history.samples(group, tp), at, config)


def series(points: list[tuple[float, int, int | None]], **kw) -> LagHistory:
    """(seconds after T0, end, committed) -> a history."""
    return history_of(*(snap(T0 + t, end, c, **kw) for t, end, c in points))


# --- Burrow's statuses -------------------------------------------------------------------------------------
def test_caught_up_is_ok_with_no_time_lag_and_nothing_to_wait_for() -> None:
    p = verdict(series([(t, 100 + t, 100 + t) for t in range(0, 10, 2)]))
    assert (p.status, p.lag, p.time_lag.seconds, p.time_lag.method) == (PartitionStatus.OK, 0, 0.0, "caught-up")
    assert (p.eta_s, p.eta_reason) == (0.0, "caught up")


def test_an_idle_topic_is_not_lag_however_old_its_last_record() -> None:
    """kafka-lag-exporter reported hours of lag on idle topics: the last produce was hours ago."""
    last_produce = T0 - 6 * 3600
    h = history_of(*(snap(T0 + t, 50, 50, record_time=last_produce) for t in range(0, 20, 2)))
    p = verdict(h)
    assert (p.status, p.lag, p.time_lag.seconds) == (PartitionStatus.OK, 0, 0.0)
    assert p.produce_rate == 0.0
    assert p.trend == "steady"


def test_lag_that_never_goes_down_while_consuming_is_warn() -> None:
    h = series([(0, 100, 10), (2, 120, 20), (4, 140, 30), (6, 160, 40), (8, 180, 50)])
    p = verdict(h)
    assert p.status == PartitionStatus.WARN
    assert p.trend == "growing"
    assert (p.eta_s, p.eta_reason) == (None, "not gaining: records arrive as fast as they are consumed")
    assert p.consume_rate == pytest.approx(5.0)
    assert p.produce_rate == pytest.approx(10.0)


def test_a_live_consumer_stuck_on_one_offset_is_stall() -> None:
    """Members are connected (they commit, Burrow would see the same offset committed again): STALL, not STOP."""
    h = series([(t, 100 + t, 40) for t in range(0, 20, 2)], members=2)
    p = verdict(h, now=T0 + 60)
    assert p.status == PartitionStatus.STALL
    assert "stuck at offset 40" in p.reason
    assert (p.eta_s, p.eta_reason) == (None, "not consuming")


def test_no_consumer_and_no_commit_for_longer_than_the_window_is_stop() -> None:
    h = series([(0, 100, 10), (2, 101, 20), (4, 102, 30), (6, 103, 30), (8, 104, 30)])
    assert verdict(h, now=T0 + 8).status != PartitionStatus.STOP  # 4 s since the move, over a 4 s span
    p = verdict(h, now=T0 + 20)  # 16 s since the last move > the 4 s it took before
    assert p.status == PartitionStatus.STOP
    assert p.reason == "no commit for 16s, longer than the 4s its commits spanned"
    still = verdict(series([(t, 100 + t, 10) for t in range(0, 10, 2)]))
    assert (still.status, still.reason) == (PartitionStatus.STOP, "no commit in the whole window (8s) and no consumer")


def test_stop_waits_while_the_consumer_was_caught_up_recently() -> None:
    """Burrow's checkIfRecentLagZero: a broker offset in the window at or below the commit."""
    h = series([(0, 30, 30), (2, 30, 30), (4, 31, 30), (6, 32, 30)])
    assert verdict(h, now=T0 + 60).status != PartitionStatus.STOP


def test_a_rewind_that_has_not_recovered_is_rewind_and_one_that_has_is_not() -> None:
    rewound = series([(0, 1000, 500), (2, 1000, 600), (4, 1000, 100), (6, 1000, 150), (8, 1000, 200)])
    p = verdict(rewound)
    assert p.status == PartitionStatus.REWIND
    assert "went back from 600" in p.reason
    assert p.consume_rate == pytest.approx(25.0)  # measured since the rewind, not across it
    recovered = series([(0, 1000, 500), (2, 1000, 600), (4, 1000, 100), (6, 1000, 400), (8, 1000, 700)])
    assert verdict(recovered).status == PartitionStatus.OK


def test_too_few_samples_say_so_instead_of_guessing() -> None:
    """Burrow calls one lagging commit STALL (all offsets of a one-entry window are equal)."""
    p = verdict(series([(0, 100, 40), (2, 100, 40)]))
    assert (p.status, p.reason) == (PartitionStatus.UNKNOWN, "too few samples (2 of 3)")
    assert p.lag == 60  # the figures are still there
    assert p.complete == pytest.approx(0.2)


def test_a_window_shorter_than_the_commit_interval_decides_nothing() -> None:
    h = series([(0, 100, 40), (1, 100, 40), (2, 100, 40)], members=1)
    p = verdict(h)
    assert (p.status, p.reason) == (PartitionStatus.UNKNOWN, "window too short (2.0s of 5s)")
    assert verdict(h, config=EvalConfig(min_span_s=0)).status == PartitionStatus.STALL


def test_allowed_lag_counts_as_caught_up() -> None:
    h = series([(t, 105 + t, 100 + t) for t in range(0, 10, 2)])
    assert verdict(h).status == PartitionStatus.WARN
    p = verdict(h, config=EvalConfig(allowed_lag=5))
    assert (p.status, p.reason) == (PartitionStatus.OK, "lag within the allowed 5")


def test_config_refuses_windows_that_decide_nothing() -> None:
    with pytest.raises(ValueError, match="min_samples"):
        EvalConfig(window=2, min_samples=3)
    with pytest.raises(ValueError, match="min_span_s"):
        EvalConfig(min_span_s=-1)


# --- the draining burst ------------------------------------------------------------------------------------
def test_a_draining_burst_is_ok_and_shrinking_with_a_finite_eta() -> None:
    """A burst of 1000 arrives at once and drains at 100/s: the lag goes down, so it is not growing lag."""
    burst_at = T0 - 1
    h = history_of(*(snap(T0 + t, 1000, 100 * t, record_time=burst_at) for t in range(0, 10, 2)))
    p = verdict(h)
    assert p.status == PartitionStatus.OK
    assert p.trend == "shrinking"
    assert p.consume_rate == pytest.approx(100.0)
    assert p.eta_s == pytest.approx(200 / 100.0)  # 200 left at 100/s net (nothing new arrives)
    assert p.time_lag.seconds == pytest.approx(9.0)  # the oldest unconsumed record is from the burst


# --- time lag ---------------------------------------------------------------------------------------------
def test_time_lag_is_the_age_of_the_record_at_the_committed_offset() -> None:
    h = history_of(snap(T0, 10, 4, record_time=T0 - 42.5))
    p = verdict(h)
    assert (p.time_lag.seconds, p.time_lag.method) == (42.5, "record")


def test_time_lag_of_a_record_with_a_future_timestamp_is_zero_not_negative() -> None:
    assert verdict(history_of(snap(T0, 10, 4, record_time=T0 + 30))).time_lag.seconds == 0.0


def test_a_deleted_record_falls_back_to_interpolation_over_the_end_offsets() -> None:
    """The record at the committed offset is below the log start (retention deleted it): its append time
    lies where the sampled end offset went past it; flat segments (an idle producer) are never used."""
    h = history_of(
        snap(T0, 100, 90, start=0),
        snap(T0 + 10, 100, 90, start=0),   # idle: end flat, no division by zero
        snap(T0 + 20, 200, 90, start=0),   # 100 records appended in these 10 s
        snap(T0 + 30, 200, 150, start=160),  # committed 150 < start 160: gone; first unconsumed is 160
    )
    p = verdict(h)
    assert p.time_lag.method == "interpolated"
    # offset 160 made the end 161: 61 of 100 records into the 10 s from T0+10 -> appended at T0+16.1
    assert p.time_lag.seconds == pytest.approx(30 - 16.1)


def test_a_record_older_than_the_history_gives_a_lower_bound_not_an_extrapolation() -> None:
    h = history_of(snap(T0, 500, 100), snap(T0 + 5, 510, 105))
    p = verdict(h)
    assert (p.time_lag.method, p.time_lag.seconds) == ("lower-bound", 5.0)
    first = history_of(snap(T0, 500, 100))
    assert verdict(first).time_lag == verdict(first).time_lag.__class__(None, "unknown")


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=2, max_size=30), st.data())
def test_interpolated_append_time_lies_within_the_bracketing_samples(steps: list[int], data: st.DataObject) -> None:
    ends = []
    end = 0
    for step in steps:
        end += step
        ends.append(end)
    if ends[-1] <= ends[0]:
        return
    committed = data.draw(st.integers(min_value=ends[0], max_value=ends[-1] - 1))
    h = history_of(*(snap(T0 + 10 * i, e, committed, start=0) for i, e in enumerate(ends)))
    p = verdict(h)
    assert p.time_lag.method == "interpolated"
    appended = h.last_at - p.time_lag.seconds
    i = next(i for i, e in enumerate(ends) if e > committed)
    assert T0 + 10 * (i - 1) - 1e-6 <= appended <= T0 + 10 * i + 1e-6


# --- partitions coming and going ---------------------------------------------------------------------------
def test_a_new_partition_without_a_commit_counts_from_the_log_start_and_is_not_judged() -> None:
    new = TopicPartition("task-events", 3)
    h = LagHistory()
    for t in range(0, 10, 2):
        offsets = {TP: PartitionOffsets(0, 100), new: PartitionOffsets(0, 7)}
        committed = {TP: 100, new: None} if t >= 6 else {TP: 100}
        h.add(LagSnapshot(T0 + t, offsets, {"worker": GroupOffsets("worker", "Empty", 0, committed)}))
    p = verdict(h, tp=new)
    assert (p.committed, p.lag, p.samples, p.status) == (None, 7, 2, PartitionStatus.UNKNOWN)
    assert "no committed offset yet" in p.reason
    assert verdict(h).status == PartitionStatus.OK
    assert verdict(h, config=EvalConfig()).lag == 0
    empty = TopicPartition("task-events", 4)
    h.add(LagSnapshot(T0 + 10, {TP: PartitionOffsets(0, 100), empty: PartitionOffsets(0, 0)},
                      {"worker": GroupOffsets("worker", "Empty", 0, {TP: 100, empty: None})}))
    assert (verdict(h, tp=empty).status, verdict(h, tp=empty).reason) == (
        PartitionStatus.OK, "nothing committed and nothing to consume")
    latest = LagHistory(reset_policy="latest")
    latest.add(LagSnapshot(T0, {new: PartitionOffsets(0, 7)}, {"worker": GroupOffsets("worker", committed={new: None})}))
    assert latest.samples("worker", new)[-1].lag == 0


def test_a_recreated_log_drops_the_samples_of_the_old_one() -> None:
    h = series([(0, 900, 800), (2, 950, 850), (4, 1000, 900)])
    h.add(snap(T0 + 6, 5, 0))
    (only,) = h.samples("worker", TP)
    assert (only.end, only.lag) == (5, 5)


def test_a_partition_the_group_stopped_consuming_leaves_the_history() -> None:
    other = TopicPartition("reminders", 0)
    h = history_of(LagSnapshot(T0, {TP: PartitionOffsets(0, 1), other: PartitionOffsets(0, 1)},
                               {"worker": GroupOffsets("worker", committed={TP: 1, other: 1})}))
    h.add(snap(T0 + 2, 1, 1))
    assert h.partitions("worker") == [TP]


def test_the_ring_buffer_keeps_the_newest_samples() -> None:
    h = LagHistory(capacity=4)
    for t in range(10):
        h.add(snap(T0 + t, 100 + t, 100))
    assert [s.at - T0 for s in h.samples("worker", TP)] == [6, 7, 8, 9]
    with pytest.raises(ValueError, match="at least 2"):
        LagHistory(capacity=1)


# --- groups ------------------------------------------------------------------------------------------------
def test_group_status_is_the_worst_partition_with_burrow_errors_as_err() -> None:
    from console.model.lag import PartitionLag, TimeLag

    def p(status: PartitionStatus) -> PartitionLag:
        return PartitionLag("g", TP, 0, 0, 0, 0, TimeLag(0.0, "caught-up"), status, "", None, None, None, "",
                            None, 3, 0.3)

    assert group_status([p(PartitionStatus.OK), p(PartitionStatus.STOP)]) == GroupStatus.ERR
    assert group_status([p(PartitionStatus.OK), p(PartitionStatus.REWIND)]) == GroupStatus.ERR
    assert group_status([p(PartitionStatus.OK), p(PartitionStatus.STALL)]) == GroupStatus.ERR
    assert group_status([p(PartitionStatus.OK), p(PartitionStatus.WARN)]) == GroupStatus.WARN
    assert group_status([p(PartitionStatus.OK), p(PartitionStatus.UNKNOWN)]) == GroupStatus.OK
    assert group_status([p(PartitionStatus.UNKNOWN)]) == GroupStatus.UNKNOWN


def test_evaluate_orders_groups_worst_first_with_totals_and_sparkline_series() -> None:
    h = LagHistory()
    for t in range(0, 10, 2):
        tps = {TP: PartitionOffsets(0, 100 + t), TopicPartition("task-events", 1): PartitionOffsets(0, 50)}
        h.add(LagSnapshot(T0 + t, tps, {
            "audit": GroupOffsets("audit", "Empty", 0, {TP: 100 + t, TopicPartition("task-events", 1): 50}),
            "worker": GroupOffsets("worker", "Stable", 1, {TP: 90, TopicPartition("task-events", 1): 40}),
        }))
    audit, worker = sorted(evaluate(h), key=lambda g: g.group)
    report = evaluate(h)
    assert [g.group for g in report] == ["worker", "audit"]
    assert (worker.status, worker.total_lag, audit.status, audit.total_lag) == (GroupStatus.ERR, 28, GroupStatus.OK, 0)
    assert worker.worst is not None
    assert worker.worst.status == PartitionStatus.STALL
    assert [lag for _at, lag, _t in h.group_series("worker")] == [20, 22, 24, 26, 28]
    assert evaluate(LagHistory()) == []



@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.integers(0, 40), st.booleans()), min_size=1, max_size=25))
# a snapshot that missed a partition leaves that partition's buffer reaching further back than the others'
@example([(True, 0, 0, False)] * 5 + [(True, 0, 0, True)] + [(True, 0, 0, False)] * 8)
def test_the_sparkline_series_kept_per_snapshot_equals_the_one_summed_from_the_samples(
        steps: list[tuple[bool, int, int, bool]]) -> None:
    """Read as the dashboard does (the series after every snapshot), through dropped partitions, recreated
    logs (the end going back) and partitions missing from a snapshot: the same points as summing the buffers."""
    h = LagHistory(capacity=6)
    tp1 = TopicPartition("task-events", 1)
    for i, (both, shrink, committed, missing) in enumerate(steps):
        end = 50 + i * 3 - (30 if shrink == 3 else 0)
        parts = {TP: PartitionOffsets(0, end)} if missing else {TP: PartitionOffsets(0, end), tp1: PartitionOffsets(0, 60)}
        committed_at = {TP: committed, tp1: 10} if both else {TP: committed}
        h.add(LagSnapshot(T0 + 2 * i, parts, {"worker": GroupOffsets("worker", "Empty", 0, committed_at)}))
        assert h.group_series("worker") == h._sum_series("worker")


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.sampled_from([0.5, 2.0, 2.0, 7.0]), st.integers(0, 3)),
                min_size=1, max_size=40),
       st.sampled_from([DEFAULT, EvalConfig(allowed_lag=5), EvalConfig(window=4, min_samples=2, min_span_s=1.0)]))
def test_a_verdict_reused_for_a_steady_partition_equals_judging_it_afresh(
        steps: list[tuple[int, bool, float, int]], config: EvalConfig) -> None:
    """`evaluate` judges a partition whose offsets stood still over its window from its last verdict: after
    every snapshot (offsets mostly still, the consumer coming and going, uneven gaps, the log recreated now and
    then) and at later moments, the same verdict as judging the whole window again."""
    h = LagHistory(capacity=15)
    at, end, committed = T0, 100, 40
    for move, live, gap, later in steps:
        at += gap
        if move == 1:
            end += 7
        elif move == 2:
            committed = min(end, committed + 5)
        elif move == 3 and end > 60:
            end, committed = end - 50, min(committed, end - 50)  # recreated: the end goes back
        h.add(snap(at, end, committed, members=1 if live else 0, record_time=at - 30 if committed < end else None))
        now = at + later * 4.0
        judged = evaluate(h, now, config)[0].partitions[0]
        assert judged == evaluate_partition("worker", TP, h.samples("worker", TP), now, config)
