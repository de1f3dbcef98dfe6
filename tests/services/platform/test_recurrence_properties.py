"""Property tests (hypothesis) for services.platform.recurrence.

Kept fast: each property runs a bounded number of examples (whole file well under 20 s).
"""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil import rrule as du  # type: ignore[import-untyped]
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.platform.recurrence import (
    ByDay,
    Frequency,
    RecurrenceRule,
    Weekday,
    format_rrule,
    next_occurrence,
    occurrences,
    parse_rrule,
)

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Zones with different DST rules: none, northern, southern, 30-minute, midnight transitions,
# and one that skipped a whole day (Pacific/Apia, 30 Dec 2011).
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Apia",
]

weekdays = st.sampled_from(list(Weekday))
month_days = st.integers(1, 31) | st.integers(-31, -1)


@st.composite
def rules(
    draw: st.DrawFn,
    *,
    freqs: tuple[Frequency, ...] = tuple(Frequency),
    ends: bool = True,
    max_interval: int = 4,
) -> RecurrenceRule:
    freq = draw(st.sampled_from(freqs))
    # 7, 12 and 24 pin the weekday or the month, where rules can run dry (see the bounded search).
    interval = draw(st.integers(1, max_interval) | st.just(1) | st.sampled_from([7, 12, 24]))
    plain = draw(st.lists(weekdays, max_size=3, unique=True))
    by_day = [ByDay(w) for w in plain]
    if freq is Frequency.MONTHLY:
        ordinals = draw(st.lists(st.tuples(weekdays, st.integers(1, 5) | st.integers(-5, -1)), max_size=2))
        by_day += [ByDay(w, n) for w, n in ordinals]
    by_month_day: list[int] = []
    if freq is not Frequency.WEEKLY:
        by_month_day = draw(st.lists(month_days, max_size=3))
    count: int | None = None
    until: date | datetime | None = None
    if ends:
        end = draw(st.sampled_from(["none", "count", "until_date", "until_utc"]))
        if end == "count":
            count = draw(st.integers(1, 12))
        elif end == "until_date":
            until = draw(st.dates(date(2000, 1, 1), date(2040, 12, 31)))
        elif end == "until_utc":
            until = draw(st.datetimes(datetime(2000, 1, 1), datetime(2040, 12, 31))).replace(
                microsecond=0, tzinfo=UTC
            )
    return RecurrenceRule(
        freq,
        interval=interval,
        by_day=tuple(by_day),
        by_month_day=tuple(by_month_day),
        count=count,
        until=until,
    )


# Times of day around typical DST transitions come up often.
times_of_day = st.one_of(
    st.builds(time, st.integers(0, 3), st.sampled_from([0, 15, 30, 45])),
    st.builds(time, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)),
)


@st.composite
def series_starts(draw: st.DrawFn, tz: str) -> datetime:
    """A timezone-aware start: a local date and time in ``tz`` (a gap time is read as fold=0)."""
    day = draw(
        st.dates(date(2005, 1, 1), date(2035, 12, 31))
        | st.sampled_from(
            [date(2011, 12, 28), date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 1)]
        )
    )
    local = datetime.combine(day, draw(times_of_day), tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC).astimezone(ZoneInfo(tz))


def local_time(instant: datetime, tz: str) -> time:
    return instant.astimezone(ZoneInfo(tz)).time().replace(fold=0)


def wall_time_exists(day: date, at: time, tz: str) -> bool:
    local = datetime.combine(day, at, tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC).astimezone(ZoneInfo(tz)).replace(tzinfo=None) == local.replace(tzinfo=None)


# ----------------------------------------------------------------------------- text form


@FAST
@given(rules())
def test_parse_of_format_is_identity(rule: RecurrenceRule) -> None:
    text = format_rrule(rule)
    assert parse_rrule(text) == rule
    assert str(parse_rrule(text)) == text
    assert parse_rrule("RRULE:" + text) == rule


@FAST
@given(rules(), st.randoms(use_true_random=False), st.booleans(), st.booleans())
def test_parse_ignores_order_case_prefix_and_default_interval(
    rule: RecurrenceRule, rnd: object, lower: bool, prefix: bool
) -> None:
    parts = format_rrule(rule).split(";")
    if rule.interval == 1:
        parts.append("INTERVAL=1")
    rnd.shuffle(parts)  # type: ignore[attr-defined]
    text = ";".join(parts)
    if lower:
        text = text.lower()
    if prefix:
        text = "RRULE:" + text
    assert parse_rrule(text) == rule


# ----------------------------------------------------------------------------- engine


@FAST
@given(st.data(), rules(), st.sampled_from(ZONES))
def test_next_is_strictly_after_current(data: st.DataObject, rule: RecurrenceRule, tz: str) -> None:
    start = data.draw(series_starts(tz))
    current = start + data.draw(st.timedeltas(timedelta(days=-30), timedelta(days=3 * 366)))
    result = next_occurrence(rule, series_start=start, current=current, tz=tz, occurrences_so_far=1)
    if result is not None:
        assert result.tzinfo is UTC
        assert result > current


@FAST
@given(st.data(), rules(freqs=(Frequency.DAILY, Frequency.WEEKLY), ends=False), st.sampled_from(ZONES))
def test_daily_and_weekly_keep_the_wall_clock_time(
    data: st.DataObject, rule: RecurrenceRule, tz: str
) -> None:
    start = data.draw(series_starts(tz))
    wall = local_time(start, tz)
    zone = ZoneInfo(tz)
    for instant in list(occurrences(rule, start, tz, 25))[1:]:
        got = instant.astimezone(zone)
        if got.time().replace(fold=0) == wall:
            continue
        # Only where that wall time did not exist on the scheduled day: then it moved forward by the gap.
        scheduled = [
            day
            for day in (got.date(), got.date() - timedelta(days=1))
            if not wall_time_exists(day, wall, tz)
            and datetime.combine(day, wall, tzinfo=zone).astimezone(UTC) == instant
        ]
        assert scheduled, f"{got} is not at {wall} local time"
        assert got.replace(tzinfo=None) > datetime.combine(scheduled[0], wall)


@FEWER
@given(st.data(), rules(ends=False), st.sampled_from(ZONES))
def test_every_frequency_keeps_the_wall_clock_time_where_it_exists(
    data: st.DataObject, rule: RecurrenceRule, tz: str
) -> None:
    start = data.draw(series_starts(tz))
    wall = local_time(start, tz)
    for instant in list(occurrences(rule, start, tz, 15))[1:]:
        got = instant.astimezone(ZoneInfo(tz))
        if wall_time_exists(got.date(), wall, tz):
            assert got.time().replace(fold=0) == wall


@FAST
@given(st.data(), rules(), st.sampled_from(ZONES))
def test_chained_next_occurrence_matches_the_iterator(
    data: st.DataObject, rule: RecurrenceRule, tz: str
) -> None:
    start = data.draw(series_starts(tz))
    expected = list(occurrences(rule, start, tz, 30))
    assert expected[0] == start.astimezone(UTC)
    assert all(a < b for a, b in itertools.pairwise(expected))
    chained = [start.astimezone(UTC)]
    while len(chained) < 30:
        nxt = next_occurrence(
            rule, series_start=start, current=chained[-1], tz=tz, occurrences_so_far=len(chained)
        )
        if nxt is None:
            break
        chained.append(nxt)
    assert chained == expected


@FAST
@given(st.data(), rules(ends=False), st.sampled_from(ZONES))
def test_next_from_any_instant_is_the_first_later_element_of_the_iterator(
    data: st.DataObject, rule: RecurrenceRule, tz: str
) -> None:
    start = data.draw(series_starts(tz))
    series = list(occurrences(rule, start, tz, 40))
    assume(len(series) >= 2)
    current = series[0] + data.draw(
        st.timedeltas(timedelta(0), series[-1] - series[0] - timedelta(microseconds=1))
    )
    expected = next(o for o in series if o > current)
    assert next_occurrence(rule, series_start=start, current=current, tz=tz, occurrences_so_far=1) == expected


@FAST
@given(st.data(), rules(ends=False), st.integers(1, 15), st.sampled_from(ZONES))
def test_count_n_yields_exactly_n_instances(
    data: st.DataObject, base: RecurrenceRule, n: int, tz: str
) -> None:
    start = data.draw(series_starts(tz))
    rule = RecurrenceRule(base.freq, base.interval, base.by_day, base.by_month_day, count=n)
    unbounded = list(occurrences(base, start, tz, n + 5))
    counted = list(occurrences(rule, start, tz, n + 5))
    assert counted == unbounded[:n]
    # Chaining next_occurrence as the worker does stops after exactly COUNT instances.
    instances = [start]
    while (
        nxt := next_occurrence(
            rule, series_start=start, current=instances[-1], tz=tz, occurrences_so_far=len(instances)
        )
    ) is not None:
        instances.append(nxt)
        assert len(instances) <= n
    assert len(instances) == len(counted)
    if len(unbounded) >= n:
        assert len(counted) == n


@FAST
@given(
    st.data(),
    rules(freqs=(Frequency.DAILY, Frequency.WEEKLY), ends=False),
    st.integers(1, 20),
    st.sampled_from(ZONES),
)
def test_count_n_on_daily_and_weekly_is_always_n(
    data: st.DataObject, base: RecurrenceRule, n: int, tz: str
) -> None:
    assume(not base.by_month_day)  # a DAILY month-day filter may starve; without one, never
    assume(not (base.freq is Frequency.DAILY and base.by_day and base.interval % 7 == 0))
    start = data.draw(series_starts(tz))
    rule = RecurrenceRule(base.freq, base.interval, base.by_day, count=n)
    assert len(list(occurrences(rule, start, tz, 100))) == n


@FAST
@given(st.data(), rules(ends=False), st.sampled_from(ZONES), st.booleans())
def test_results_never_exceed_until(
    data: st.DataObject, base: RecurrenceRule, tz: str, as_date: bool
) -> None:
    start = data.draw(series_starts(tz))
    offset = data.draw(st.timedeltas(timedelta(days=-10), timedelta(days=800)))
    end = start + offset
    until: date | datetime = (
        end.astimezone(ZoneInfo(tz)).date() if as_date else end.astimezone(UTC).replace(microsecond=0)
    )
    rule = RecurrenceRule(base.freq, base.interval, base.by_day, base.by_month_day, until=until)
    series = list(occurrences(rule, start, tz, 60))
    for instant in series[1:]:
        if isinstance(until, datetime):
            assert instant <= until
        else:
            assert instant.astimezone(ZoneInfo(tz)).date() <= until
    # ... and UNTIL only cuts the series short: it is a prefix of the unbounded one.
    assert series == list(occurrences(base, start, tz, len(series)))
    if len(series) < 60:
        assert (
            next_occurrence(rule, series_start=start, current=series[-1], tz=tz, occurrences_so_far=1) is None
        )


@st.composite
def dateutil_compatible_rules(draw: st.DrawFn) -> RecurrenceRule:
    rule = draw(rules(ends=False, max_interval=6))
    kinds = {item.ordinal is None for item in rule.by_day}
    assume(len(kinds) <= 1)  # dateutil intersects plain and ordinal BYDAY (RFC 5545 unites them)
    return rule


@FEWER
@given(dateutil_compatible_rules(), st.datetimes(datetime(1990, 1, 1), datetime(2060, 12, 31)))
def test_calendar_expansion_agrees_with_dateutil(rule: RecurrenceRule, start: datetime) -> None:
    # In UTC there is no DST, so this compares the pure calendar logic of the two implementations.
    start = start.replace(microsecond=0)
    ours = list(occurrences(rule, start.replace(tzinfo=UTC), "UTC", 13))[1:]
    # A rule that runs dry sends dateutil on a search to year 9999 (over a second): those are left to
    # the brute-force test below.
    assume(len(ours) == 12)
    freq = {
        Frequency.DAILY: du.DAILY,
        Frequency.WEEKLY: du.WEEKLY,
        Frequency.MONTHLY: du.MONTHLY,
        Frequency.YEARLY: du.YEARLY,
    }[rule.freq]
    byweekday = [du.weekday(int(item.weekday), item.ordinal) for item in rule.by_day] or None
    reference = du.rrule(
        freq,
        dtstart=start,
        interval=rule.interval,
        wkst=du.MO,
        byweekday=byweekday,
        bymonthday=list(rule.by_month_day) or None,
    )
    expected = [dt.replace(tzinfo=UTC) for dt in reference.xafter(start, count=12, inc=False)]
    assert ours == expected


def brute_force_matches(rule: RecurrenceRule, first: date, day: date) -> bool:
    """RFC 5545 membership of ``day``, decided day by day (independent of the module's period expansion)."""
    if day == first:
        return True
    if day < first:
        return False
    step = rule.interval
    if rule.freq is Frequency.DAILY:
        on = (day - first).days % step == 0
    elif rule.freq is Frequency.WEEKLY:
        monday, first_monday = day - timedelta(days=day.weekday()), first - timedelta(days=first.weekday())
        on = ((monday - first_monday).days // 7) % step == 0
    elif rule.freq is Frequency.MONTHLY:
        on = ((day.year - first.year) * 12 + day.month - first.month) % step == 0
    else:
        on = (day.year - first.year) % step == 0
    if not on:
        return False
    length = calendar.monthrange(day.year, day.month)[1]
    month_day_ok = not rule.by_month_day or any(day.day in (v, length + 1 + v) for v in rule.by_month_day)
    nth = ((day.day - 1) // 7 + 1, -((length - day.day) // 7 + 1))
    by_day_ok = not rule.by_day or any(
        b.weekday == day.weekday() and (b.ordinal is None or b.ordinal in nth) for b in rule.by_day
    )
    if rule.freq is Frequency.WEEKLY:
        return day.weekday() in ({int(b.weekday) for b in rule.by_day} or {first.weekday()})
    if rule.freq is Frequency.DAILY or rule.by_day or rule.by_month_day:
        return month_day_ok and by_day_ok
    if rule.freq is Frequency.MONTHLY:
        return day.day == first.day
    return (day.month, day.day) == (first.month, first.day)


@FEWER
@given(rules(ends=False, max_interval=6), st.dates(date(1990, 1, 1), date(2060, 12, 31)))
def test_dates_agree_with_a_day_by_day_brute_force(rule: RecurrenceRule, first: date) -> None:
    # Mixed plain and ordinal BYDAY and rules that run dry included; UTC, so dates are the whole story.
    window = [first + timedelta(days=n) for n in range(6 * 366)]
    expected = [day for day in window if brute_force_matches(rule, first, day)]
    start = datetime.combine(first, time(9, 30), tzinfo=UTC)
    ours = [o.date() for o in occurrences(rule, start, "UTC", len(expected) + 1)]
    assert [day for day in ours if day <= window[-1]] == expected
