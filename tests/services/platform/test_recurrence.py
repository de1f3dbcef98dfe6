"""Example-based tests for services.platform.recurrence: parsing, formatting and the engine."""

from __future__ import annotations

import dataclasses
import itertools
import pickle
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import FR, MO, MONTHLY, rrule  # type: ignore[import-untyped]

from services.platform.recurrence import (
    ByDay,
    Frequency,
    RecurrenceError,
    RecurrenceRule,
    Weekday,
    format_rrule,
    next_occurrence,
    occurrences,
    parse_rrule,
)

NY = "America/New_York"
BERLIN = "Europe/Berlin"


def at(
    tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0
) -> datetime:
    """An aware datetime for a local wall-clock time in ``tz``."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def local_series(rule: str, start: datetime, tz: str, limit: int) -> list[str]:
    """The occurrences as local wall-clock strings, e.g. '2026-03-08 03:30 EDT'."""
    zone = ZoneInfo(tz)
    return [
        o.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        for o in occurrences(parse_rrule(rule), start, tz, limit)
    ]


def local_dates(rule: str, start: datetime, tz: str, limit: int) -> list[date]:
    zone = ZoneInfo(tz)
    return [o.astimezone(zone).date() for o in occurrences(parse_rrule(rule), start, tz, limit)]


def nxt(rule: str, start: datetime, current: datetime, tz: str, so_far: int = 1) -> datetime | None:
    return next_occurrence(
        parse_rrule(rule), series_start=start, current=current, tz=tz, occurrences_so_far=so_far
    )


# ----------------------------------------------------------------------------- parsing


def test_parse_minimal_rule() -> None:
    rule = parse_rrule("FREQ=DAILY")
    assert rule == RecurrenceRule(Frequency.DAILY)
    assert (rule.interval, rule.by_day, rule.by_month_day, rule.count, rule.until) == (1, (), (), None, None)


def test_parse_every_part() -> None:
    rule = parse_rrule("RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=1MO,-1FR;BYMONTHDAY=1,-1;COUNT=10")
    assert rule.freq is Frequency.MONTHLY
    assert rule.interval == 2
    assert rule.by_day == (ByDay(Weekday.MO, 1), ByDay(Weekday.FR, -1))
    assert rule.by_month_day == (1, -1)
    assert rule.count == 10
    assert rule.until is None


@pytest.mark.parametrize("freq", ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"])
def test_parse_each_frequency(freq: str) -> None:
    assert parse_rrule(f"FREQ={freq}").freq == Frequency(freq)


def test_parse_plain_byday_for_daily_and_weekly() -> None:
    assert parse_rrule("FREQ=WEEKLY;BYDAY=SU,SA,FR,TH,WE,TU,MO").by_day == tuple(ByDay(w) for w in Weekday)
    assert parse_rrule("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR").by_day == tuple(ByDay(w) for w in Weekday if w < 5)


def test_parse_until_utc_and_date_forms() -> None:
    assert parse_rrule("FREQ=DAILY;UNTIL=20261231T235959Z").until == utc(2026, 12, 31, 23, 59, 59)
    until = parse_rrule("FREQ=DAILY;UNTIL=20261231").until
    assert until == date(2026, 12, 31)
    assert not isinstance(until, datetime)


def test_parse_is_lenient_where_rfc5545_is() -> None:
    # Prefix, case-insensitive names and values, '+' signs, leading zeros, surrounding whitespace.
    rule = parse_rrule(
        "  rrule:freq=monthly;interval=02;byday=+1mo,-1fr;bymonthday=+5;until=20261231t235959z \n"
    )
    assert rule == RecurrenceRule(
        Frequency.MONTHLY,
        interval=2,
        by_day=(ByDay(Weekday.MO, 1), ByDay(Weekday.FR, -1)),
        by_month_day=(5,),
        until=utc(2026, 12, 31, 23, 59, 59),
    )


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("FREQ=DAILY", "FREQ=DAILY"),
        ("RRULE:FREQ=DAILY;INTERVAL=1", "FREQ=DAILY"),
        ("COUNT=5;INTERVAL=3;FREQ=WEEKLY", "FREQ=WEEKLY;INTERVAL=3;COUNT=5"),
        ("rrule:freq=weekly;byday=fr,mo,mo;interval=1", "FREQ=WEEKLY;BYDAY=MO,FR"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1,15,1,-2,15", "FREQ=MONTHLY;BYMONTHDAY=1,15,-1,-2"),
        ("FREQ=MONTHLY;BYDAY=-1FR,+1MO,MO,-2MO,2MO", "FREQ=MONTHLY;BYDAY=MO,1MO,2MO,-2MO,-1FR"),
        ("UNTIL=20261231T235959z;FREQ=YEARLY", "FREQ=YEARLY;UNTIL=20261231T235959Z"),
        ("FREQ=DAILY;UNTIL=20261231", "FREQ=DAILY;UNTIL=20261231"),
        ("FREQ=DAILY;INTERVAL=007", "FREQ=DAILY;INTERVAL=7"),
        (
            "FREQ=MONTHLY;COUNT=4;BYMONTHDAY=13;INTERVAL=2;BYDAY=FR",
            "FREQ=MONTHLY;INTERVAL=2;BYDAY=FR;BYMONTHDAY=13;COUNT=4",
        ),
    ],
)
def test_format_is_canonical(text: str, canonical: str) -> None:
    rule = parse_rrule(text)
    assert format_rrule(rule) == canonical
    assert str(rule) == canonical
    assert parse_rrule(canonical) == rule


def test_rule_is_frozen_and_hashable() -> None:
    rule = parse_rrule("FREQ=WEEKLY;BYDAY=MO")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.interval = 2  # type: ignore[misc]
    assert {rule, parse_rrule("RRULE:FREQ=WEEKLY;BYDAY=MO;INTERVAL=1")} == {rule}


def test_direct_construction_validates_and_canonicalizes() -> None:
    rule = RecurrenceRule("weekly", by_day=("fr", ByDay(Weekday.MO), "FR"))  # type: ignore[arg-type]
    assert rule.freq is Frequency.WEEKLY
    assert rule.by_day == (ByDay(Weekday.MO), ByDay(Weekday.FR))
    berlin_until = RecurrenceRule(Frequency.DAILY, until=at(BERLIN, 2026, 7, 1, 12))
    assert berlin_until.until == utc(2026, 7, 1, 10)
    assert str(berlin_until) == "FREQ=DAILY;UNTIL=20260701T100000Z"
    with pytest.raises(RecurrenceError, match="BYMONTHDAY"):
        RecurrenceRule(Frequency.WEEKLY, by_month_day=(1,))
    with pytest.raises(RecurrenceError, match="timezone-aware") as info:
        RecurrenceRule(Frequency.DAILY, until=datetime(2026, 1, 1))
    assert info.value.part == "UNTIL"
    with pytest.raises(RecurrenceError, match="whole seconds"):
        RecurrenceRule(Frequency.DAILY, until=utc(2026, 1, 1, 0, 0, 0, 500))
    with pytest.raises(RecurrenceError, match="INTERVAL"):
        RecurrenceRule(Frequency.DAILY, interval=True)
    with pytest.raises(RecurrenceError, match="FREQ"):
        RecurrenceRule("HOURLY")  # type: ignore[arg-type]
    with pytest.raises(RecurrenceError, match="BYDAY"):
        ByDay(Weekday.MO, 0)
    with pytest.raises(RecurrenceError, match="BYDAY"):
        ByDay(7)  # type: ignore[arg-type]


# (rule text, the part the error names)
ERROR_CASES: list[tuple[object, str]] = [
    ("", "RRULE"),
    ("   ", "RRULE"),
    ("RRULE:", "RRULE"),
    ("FREQ=DAILY;", "RRULE"),
    ("FREQ=DAILY;;COUNT=2", "RRULE"),
    ("FREQDAILY", "RRULE"),
    ("=DAILY", "RRULE"),
    ("FREQ=DAILY;COUNT=\uff11", "RRULE"),
    ("FREQ=DAILY;BYDAY=\u017fU", "RRULE"),
    ("FREQ=DAILY;" + "COUNT=1;" * 200, "RRULE"),
    (None, "RRULE"),
    (b"FREQ=DAILY", "RRULE"),
    # FREQ
    ("INTERVAL=2", "FREQ"),
    ("FREQ=", "FREQ"),
    ("FREQ=HOURLY", "FREQ"),
    ("FREQ=SECONDLY", "FREQ"),
    ("FREQ=FORTNIGHTLY", "FREQ"),
    ("FREQ=DAILY;FREQ=WEEKLY", "FREQ"),
    # unknown or unsupported parts
    ("FREQ=DAILY;WKST=MO", "WKST"),
    ("FREQ=YEARLY;BYMONTH=1", "BYMONTH"),
    ("FREQ=MONTHLY;BYSETPOS=-1", "BYSETPOS"),
    ("FREQ=DAILY;BYHOUR=9", "BYHOUR"),
    ("FREQ=DAILY;FOO=BAR", "FOO"),
    ("FREQ=DAILY;DTSTART=20260101", "DTSTART"),
    # INTERVAL
    ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
    ("FREQ=DAILY;INTERVAL=-1", "INTERVAL"),
    ("FREQ=DAILY;INTERVAL=+2", "INTERVAL"),
    ("FREQ=DAILY;INTERVAL=1.5", "INTERVAL"),
    ("FREQ=DAILY;INTERVAL=two", "INTERVAL"),
    ("FREQ=DAILY;INTERVAL= 2", "INTERVAL"),
    ("FREQ=DAILY;INTERVAL=1_000", "INTERVAL"),
    ("FREQ=DAILY;INTERVAL=", "INTERVAL"),
    ("FREQ=DAILY;INTERVAL=2;INTERVAL=2", "INTERVAL"),
    # COUNT
    ("FREQ=DAILY;COUNT=0", "COUNT"),
    ("FREQ=DAILY;COUNT=-3", "COUNT"),
    ("FREQ=DAILY;COUNT=many", "COUNT"),
    ("FREQ=DAILY;COUNT=1;COUNT=2", "COUNT"),
    # BYMONTHDAY
    ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY"),
    ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
    ("FREQ=MONTHLY;BYMONTHDAY=-32", "BYMONTHDAY"),
    ("FREQ=MONTHLY;BYMONTHDAY=1,,2", "BYMONTHDAY"),
    ("FREQ=MONTHLY;BYMONTHDAY=1,", "BYMONTHDAY"),
    ("FREQ=MONTHLY;BYMONTHDAY=first", "BYMONTHDAY"),
    ("FREQ=MONTHLY;BYMONTHDAY=1.5", "BYMONTHDAY"),
    ("FREQ=MONTHLY;BYMONTHDAY=100", "BYMONTHDAY"),
    ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY"),
    ("FREQ=MONTHLY;BYMONTHDAY=1;BYMONTHDAY=2", "BYMONTHDAY"),
    # BYDAY
    ("FREQ=WEEKLY;BYDAY=XX", "BYDAY"),
    ("FREQ=WEEKLY;BYDAY=MON", "BYDAY"),
    ("FREQ=WEEKLY;BYDAY=MO,", "BYDAY"),
    ("FREQ=WEEKLY;BYDAY=MO TU", "BYDAY"),
    ("FREQ=MONTHLY;BYDAY=0MO", "BYDAY"),
    ("FREQ=MONTHLY;BYDAY=6MO", "BYDAY"),
    ("FREQ=MONTHLY;BYDAY=-6FR", "BYDAY"),
    ("FREQ=MONTHLY;BYDAY=100MO", "BYDAY"),
    ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY"),
    ("FREQ=DAILY;BYDAY=-1FR", "BYDAY"),
    ("FREQ=YEARLY;BYDAY=20MO", "BYDAY"),
    ("FREQ=WEEKLY;BYDAY=MO;BYDAY=TU", "BYDAY"),
    # UNTIL
    ("FREQ=DAILY;COUNT=5;UNTIL=20261231", "UNTIL"),
    ("FREQ=DAILY;UNTIL=20261231;COUNT=5", "UNTIL"),
    ("FREQ=DAILY;UNTIL=20261231T235959", "UNTIL"),
    ("FREQ=DAILY;UNTIL=2026-12-31", "UNTIL"),
    ("FREQ=DAILY;UNTIL=20260230", "UNTIL"),
    ("FREQ=DAILY;UNTIL=20261231T246000Z", "UNTIL"),
    ("FREQ=DAILY;UNTIL=20261231T235960Z", "UNTIL"),
    ("FREQ=DAILY;UNTIL=00000101", "UNTIL"),
    ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL"),
    ("FREQ=DAILY;UNTIL=20261231T235959+0100", "UNTIL"),
    ("FREQ=DAILY;UNTIL=20261231;UNTIL=20271231", "UNTIL"),
]


@pytest.mark.parametrize(("text", "part"), ERROR_CASES)
def test_parse_errors_name_the_offending_part(text: object, part: str) -> None:
    with pytest.raises(RecurrenceError) as info:
        parse_rrule(text)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert info.value.part == part
    assert part in str(info.value)


def test_error_messages_are_specific() -> None:
    cases = {
        "FREQ=DAILY;WKST=MO": "not supported",
        "FREQ=DAILY;FREQ=DAILY": "more than once",
        "FREQ=DAILY;INTERVAL=0": "positive integer",
        "FREQ=MONTHLY;BYMONTHDAY=0": "1..31 or -1..-31",
        "FREQ=WEEKLY;BYDAY=1MO": "only supported with FREQ=MONTHLY",
        "FREQ=DAILY;COUNT=5;UNTIL=20261231": "COUNT and UNTIL",
        "FREQ=DAILY;UNTIL=20261231T235959": "'Z'",
        "FREQ=HOURLY": "DAILY, WEEKLY, MONTHLY, YEARLY",
    }
    for text, fragment in cases.items():
        with pytest.raises(RecurrenceError, match=fragment):
            parse_rrule(text)


def test_error_message_does_not_echo_huge_values() -> None:
    with pytest.raises(RecurrenceError) as info:
        parse_rrule("FREQ=DAILY;BYDAY=" + "X" * 900)
    assert len(str(info.value)) < 200


def test_recurrence_error_pickles_with_its_part() -> None:
    error = RecurrenceError("COUNT must be a positive integer", part="COUNT")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.part) == (RecurrenceError, str(error), "COUNT")


# ----------------------------------------------------------------------------- wall clock and DST


def test_daily_keeps_local_time_across_new_york_dst() -> None:
    spring = local_series("FREQ=DAILY", at(NY, 2026, 3, 6, 9), NY, 4)
    assert spring == [
        "2026-03-06 09:00 EST",
        "2026-03-07 09:00 EST",
        "2026-03-08 09:00 EDT",
        "2026-03-09 09:00 EDT",
    ]
    fall = local_series("FREQ=DAILY", at(NY, 2026, 10, 30, 9), NY, 4)
    assert fall == [
        "2026-10-30 09:00 EDT",
        "2026-10-31 09:00 EDT",
        "2026-11-01 09:00 EST",
        "2026-11-02 09:00 EST",
    ]
    # The UTC time moves instead.
    assert nxt("FREQ=DAILY", at(NY, 2026, 3, 7, 9), at(NY, 2026, 3, 7, 9), NY) == utc(2026, 3, 8, 13)


def test_new_york_spring_forward_gap_shifts_by_the_gap_then_returns() -> None:
    start = at(NY, 2026, 3, 6, 2, 30)
    assert local_series("FREQ=DAILY", start, NY, 5) == [
        "2026-03-06 02:30 EST",
        "2026-03-07 02:30 EST",
        "2026-03-08 03:30 EDT",  # 02:30 does not exist on 8 March: one hour later
        "2026-03-09 02:30 EDT",
        "2026-03-10 02:30 EDT",
    ]
    assert nxt("FREQ=DAILY", start, at(NY, 2026, 3, 7, 2, 30), NY) == utc(2026, 3, 8, 7, 30)
    assert nxt("FREQ=DAILY", start, utc(2026, 3, 8, 7, 30), NY) == utc(2026, 3, 9, 6, 30)


def test_new_york_fall_back_takes_the_first_of_the_ambiguous_times() -> None:
    start = at(NY, 2026, 10, 30, 1, 30)
    assert local_series("FREQ=DAILY", start, NY, 4) == [
        "2026-10-30 01:30 EDT",
        "2026-10-31 01:30 EDT",
        "2026-11-01 01:30 EDT",  # 01:30 happens twice: the first (EDT) one, once
        "2026-11-02 01:30 EST",
    ]
    first = nxt("FREQ=DAILY", start, at(NY, 2026, 10, 31, 1, 30), NY)
    assert first == utc(2026, 11, 1, 5, 30)
    # Completing it during the repeated hour does not produce a second instance that day.
    assert nxt("FREQ=DAILY", start, first, NY) == utc(2026, 11, 2, 6, 30)
    assert nxt("FREQ=DAILY", start, utc(2026, 11, 1, 6, 0), NY) == utc(2026, 11, 2, 6, 30)


def test_series_starting_on_the_second_ambiguous_time_keeps_it_as_first_instance() -> None:
    start = at(NY, 2026, 11, 1, 1, 30, fold=1)  # 01:30 EST, the second one
    assert start.astimezone(UTC) == utc(2026, 11, 1, 6, 30)
    got = list(occurrences(parse_rrule("FREQ=DAILY"), start, NY, 2))
    assert got == [utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 6, 30)]


def test_berlin_spring_forward_and_fall_back() -> None:
    start = at(BERLIN, 2026, 3, 28, 2, 30)
    assert local_series("FREQ=DAILY", start, BERLIN, 3) == [
        "2026-03-28 02:30 CET",
        "2026-03-29 03:30 CEST",
        "2026-03-30 02:30 CEST",
    ]
    assert nxt("FREQ=DAILY", start, start, BERLIN) == utc(2026, 3, 29, 1, 30)
    fall_start = at(BERLIN, 2026, 10, 24, 2, 30)
    assert local_series("FREQ=DAILY", fall_start, BERLIN, 3) == [
        "2026-10-24 02:30 CEST",
        "2026-10-25 02:30 CEST",
        "2026-10-26 02:30 CET",
    ]
    assert nxt("FREQ=DAILY", fall_start, fall_start, BERLIN) == utc(2026, 10, 25, 0, 30)


def test_berlin_weekly_sunday_task_across_both_transitions() -> None:
    start = at(BERLIN, 2026, 3, 22, 2, 30)  # Sundays; DST starts 29 March, ends 25 October
    got = local_series("FREQ=WEEKLY", start, BERLIN, 3)
    assert got == ["2026-03-22 02:30 CET", "2026-03-29 03:30 CEST", "2026-04-05 02:30 CEST"]
    assert nxt("FREQ=WEEKLY", start, at(BERLIN, 2026, 10, 18, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)


def test_half_hour_dst_shift_in_lord_howe() -> None:
    tz = "Australia/Lord_Howe"  # clocks go from 02:00 to 02:30 on 4 October 2026
    got = local_series("FREQ=DAILY", at(tz, 2026, 10, 3, 2, 15), tz, 3)
    assert [s[:16] for s in got] == ["2026-10-03 02:15", "2026-10-04 02:45", "2026-10-05 02:15"]


def test_skipped_calendar_day_gives_one_occurrence_not_two() -> None:
    tz = "Pacific/Apia"  # 30 December 2011 did not exist there
    got = list(occurrences(parse_rrule("FREQ=DAILY"), at(tz, 2011, 12, 28, 9), tz, 5))
    assert got == sorted(set(got))
    assert [o.astimezone(ZoneInfo(tz)).date().day for o in got] == [28, 29, 31, 1, 2]


def test_results_are_utc_and_wall_time_comes_from_tz() -> None:
    start = utc(2026, 1, 5, 14)  # 09:00 in New York, given in UTC
    result = nxt("FREQ=DAILY", start, start, NY)
    assert result is not None
    assert result.tzinfo is UTC
    assert result == utc(2026, 1, 6, 14)
    # The same instant seen from Tokyo (23:00) is a 23:00 task there.
    assert nxt("FREQ=DAILY", start, start, "Asia/Tokyo") == utc(2026, 1, 6, 14)
    assert nxt("FREQ=DAILY", start, utc(2026, 7, 1), NY) == utc(2026, 7, 1, 13)


# ----------------------------------------------------------------------------- month ends, leap days


def test_monthly_from_january_31_skips_months_without_a_31st() -> None:
    got = local_dates("FREQ=MONTHLY", at(NY, 2026, 1, 31, 9), NY, 8)
    assert [(d.month, d.day) for d in got] == [
        (1, 31),
        (3, 31),
        (5, 31),
        (7, 31),
        (8, 31),
        (10, 31),
        (12, 31),
        (1, 31),
    ]
    assert nxt("FREQ=MONTHLY", at(NY, 2026, 1, 31, 9), at(NY, 2026, 1, 31, 9), NY) == at(NY, 2026, 3, 31, 9)


def test_monthly_on_the_30th_skips_february() -> None:
    got = local_dates("FREQ=MONTHLY", at(NY, 2026, 1, 30, 9), NY, 3)
    assert got == [date(2026, 1, 30), date(2026, 3, 30), date(2026, 4, 30)]


def test_bymonthday_minus_one_is_the_last_day_of_each_month() -> None:
    got = local_dates("FREQ=MONTHLY;BYMONTHDAY=-1", at(NY, 2027, 11, 30, 9), NY, 6)
    assert got == [
        date(2027, 11, 30),
        date(2027, 12, 31),
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
    ]


def test_bymonthday_31_and_minus_31() -> None:
    assert local_dates("FREQ=MONTHLY;BYMONTHDAY=31", at(NY, 2026, 4, 1, 9), NY, 3)[1:] == [
        date(2026, 5, 31),
        date(2026, 7, 31),
    ]
    # -31 is the 1st of a 31-day month only.
    assert local_dates("FREQ=MONTHLY;BYMONTHDAY=-31", at(NY, 2026, 2, 1, 9), NY, 3)[1:] == [
        date(2026, 3, 1),
        date(2026, 5, 1),
    ]


def test_yearly_from_february_29_occurs_only_in_leap_years() -> None:
    assert local_dates("FREQ=YEARLY", at(NY, 2024, 2, 29, 9), NY, 3) == [
        date(2024, 2, 29),
        date(2028, 2, 29),
        date(2032, 2, 29),
    ]
    # 2100 is not a leap year.
    assert local_dates("FREQ=YEARLY", at(NY, 2096, 2, 29, 9), NY, 2) == [date(2096, 2, 29), date(2104, 2, 29)]
    assert nxt("FREQ=YEARLY;COUNT=2", at(NY, 2024, 2, 29, 9), at(NY, 2024, 2, 29, 9), NY) == at(
        NY, 2028, 2, 29, 9
    )


def test_long_but_finite_gaps_are_found() -> None:
    # Every 100 years from 29 Feb 2000: 2100, 2200 and 2300 are not leap years, 2400 is.
    start = at(NY, 2000, 2, 29, 9)
    assert nxt("FREQ=YEARLY;INTERVAL=100", start, start, NY) == at(NY, 2400, 2, 29, 9)
    # Friday the 13th in February on a two-year step: 2015, then 2037 (gap of 22 years).
    start = at(NY, 2015, 2, 13, 9)
    assert nxt("FREQ=MONTHLY;INTERVAL=24;BYMONTHDAY=13;BYDAY=FR", start, start, NY) == at(NY, 2037, 2, 13, 9)


def test_last_day_of_february_every_year() -> None:
    got = local_dates("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=-1", at(NY, 2027, 2, 28, 9), NY, 3)
    assert got == [date(2027, 2, 28), date(2028, 2, 29), date(2029, 2, 28)]


# ----------------------------------------------------------------------------- BYDAY / BYMONTHDAY


def test_weekly_interval_2_with_byday() -> None:
    got = local_dates("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR", at(NY, 2026, 1, 7, 9), NY, 8)  # a Wednesday
    assert got == [
        date(2026, 1, 7),
        date(2026, 1, 9),
        date(2026, 1, 19),
        date(2026, 1, 21),
        date(2026, 1, 23),
        date(2026, 2, 2),
        date(2026, 2, 4),
        date(2026, 2, 6),
    ]


def test_weekly_interval_counts_monday_to_sunday_weeks() -> None:
    # Sunday 11 Jan is in the week of Monday 5 Jan; the next week "on" is the one of 19 Jan.
    got = local_dates("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", at(NY, 2026, 1, 11, 9), NY, 3)
    assert got == [date(2026, 1, 11), date(2026, 1, 19), date(2026, 2, 2)]


def test_weekly_without_byday_uses_the_start_weekday() -> None:
    got = local_dates("FREQ=WEEKLY;INTERVAL=3", at(NY, 2026, 1, 8, 9), NY, 3)
    assert got == [date(2026, 1, 8), date(2026, 1, 29), date(2026, 2, 19)]


def test_monthly_last_friday() -> None:
    got = local_dates("FREQ=MONTHLY;BYDAY=-1FR", at(NY, 2026, 1, 30, 17), NY, 6)
    assert got == [
        date(2026, 1, 30),
        date(2026, 2, 27),
        date(2026, 3, 27),
        date(2026, 4, 24),
        date(2026, 5, 29),
        date(2026, 6, 26),
    ]


def test_monthly_first_monday_and_last_friday() -> None:
    got = local_dates("FREQ=MONTHLY;BYDAY=1MO,-1FR", at(NY, 2026, 1, 5, 9), NY, 5)
    assert got == [date(2026, 1, 5), date(2026, 1, 30), date(2026, 2, 2), date(2026, 2, 27), date(2026, 3, 2)]


def test_monthly_fifth_monday_only_in_months_that_have_one() -> None:
    got = local_dates("FREQ=MONTHLY;BYDAY=5MO", at(NY, 2026, 3, 30, 9), NY, 4)
    assert got == [date(2026, 3, 30), date(2026, 6, 29), date(2026, 8, 31), date(2026, 11, 30)]


def test_monthly_byday_mixing_plain_and_ordinal_is_a_union() -> None:
    start = at("UTC", 2026, 1, 1, 9)
    got = local_dates("FREQ=MONTHLY;BYDAY=MO,1FR", start, "UTC", 7)
    assert got == [
        date(2026, 1, 1),  # the first instance, though not matched by the rule
        date(2026, 1, 2),  # first Friday
        date(2026, 1, 5),
        date(2026, 1, 12),
        date(2026, 1, 19),
        date(2026, 1, 26),
        date(2026, 2, 2),
    ]
    # python-dateutil intersects the two kinds and produces nothing: the reason for our own expansion.
    assert list(rrule(MONTHLY, dtstart=datetime(2026, 1, 1, 9), byweekday=(MO, FR(1)), count=3)) == []


def test_friday_the_13th() -> None:
    got = local_dates("FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR", at(NY, 2026, 1, 1, 9), NY, 4)
    assert got[1:] == [date(2026, 2, 13), date(2026, 3, 13), date(2026, 11, 13)]


def test_daily_byday_weekdays_only() -> None:
    start = at(NY, 2026, 1, 9, 8)  # a Friday
    assert nxt("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", start, start, NY) == at(NY, 2026, 1, 12, 8)


def test_daily_interval_with_bymonthday_filter() -> None:
    got = local_dates("FREQ=DAILY;BYMONTHDAY=1,15", at(NY, 2026, 1, 1, 9), NY, 4)
    assert got == [date(2026, 1, 1), date(2026, 1, 15), date(2026, 2, 1), date(2026, 2, 15)]


def test_yearly_with_bymonthday_follows_rfc5545_and_expands_to_every_month() -> None:
    got = local_dates("FREQ=YEARLY;BYMONTHDAY=1", at(NY, 2026, 1, 1, 9), NY, 3)
    assert got == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]


def test_yearly_with_byday_is_every_such_weekday_of_the_year() -> None:
    got = local_dates("FREQ=YEARLY;INTERVAL=2;BYDAY=MO", at(NY, 2026, 12, 28, 9), NY, 3)
    assert got == [date(2026, 12, 28), date(2028, 1, 3), date(2028, 1, 10)]


def test_series_start_is_the_first_instance_even_off_rule() -> None:
    start = at(NY, 2026, 1, 7, 9)  # a Wednesday
    got = local_dates("FREQ=WEEKLY;BYDAY=MO;COUNT=3", start, NY, 10)
    assert got == [date(2026, 1, 7), date(2026, 1, 12), date(2026, 1, 19)]


# ----------------------------------------------------------------------------- COUNT and UNTIL


def test_count_ends_the_series() -> None:
    rule = "FREQ=DAILY;COUNT=3"
    start = at(NY, 2026, 1, 1, 9)
    assert local_dates(rule, start, NY, 10) == [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]
    assert nxt(rule, start, start, NY, so_far=1) == at(NY, 2026, 1, 2, 9)
    assert nxt(rule, start, at(NY, 2026, 1, 2, 9), NY, so_far=2) == at(NY, 2026, 1, 3, 9)
    assert nxt(rule, start, at(NY, 2026, 1, 3, 9), NY, so_far=3) is None
    assert nxt(rule, start, at(NY, 2026, 1, 3, 9), NY, so_far=7) is None


def test_count_one_is_just_the_first_instance() -> None:
    start = at(NY, 2026, 1, 1, 9)
    assert local_dates("FREQ=WEEKLY;COUNT=1", start, NY, 5) == [date(2026, 1, 1)]
    assert nxt("FREQ=WEEKLY;COUNT=1", start, start, NY) is None


def test_count_trusts_the_instances_that_exist() -> None:
    # Two instances exist (one was completed late, past two rule dates): the third is the last.
    start = at(NY, 2026, 1, 1, 9)
    assert nxt("FREQ=DAILY;COUNT=3", start, at(NY, 2026, 1, 5, 12), NY, so_far=2) == at(NY, 2026, 1, 6, 9)


def test_until_utc_is_inclusive() -> None:
    start = at(NY, 2026, 1, 1, 9)  # 14:00 UTC
    assert local_dates("FREQ=DAILY;UNTIL=20260105T140000Z", start, NY, 10)[-1] == date(2026, 1, 5)
    assert local_dates("FREQ=DAILY;UNTIL=20260105T135959Z", start, NY, 10)[-1] == date(2026, 1, 4)
    assert nxt("FREQ=DAILY;UNTIL=20260105T140000Z", start, at(NY, 2026, 1, 4, 9), NY) == at(NY, 2026, 1, 5, 9)
    assert nxt("FREQ=DAILY;UNTIL=20260105T140000Z", start, at(NY, 2026, 1, 5, 9), NY) is None


def test_until_date_is_the_inclusive_local_date() -> None:
    start = at(NY, 2026, 1, 1, 21)  # 21:00 in New York is 02:00 UTC the next day
    got = local_dates("FREQ=DAILY;UNTIL=20260105", start, NY, 10)
    assert got == [date(2026, 1, d) for d in range(1, 6)]
    assert nxt("FREQ=DAILY;UNTIL=20260105", start, at(NY, 2026, 1, 5, 21), NY) is None


def test_until_before_the_start_leaves_only_the_first_instance() -> None:
    start = at(NY, 2026, 1, 1, 9)
    assert local_dates("FREQ=DAILY;UNTIL=20251231", start, NY, 5) == [date(2026, 1, 1)]
    assert nxt("FREQ=DAILY;UNTIL=20251231", start, start, NY) is None


def test_until_past_gap_and_month_end_rules() -> None:
    got = local_dates("FREQ=MONTHLY;UNTIL=20260701", at(NY, 2026, 1, 31, 9), NY, 10)
    assert got == [date(2026, 1, 31), date(2026, 3, 31), date(2026, 5, 31)]


# ----------------------------------------------------------------------------- next_occurrence behaviour


def test_next_is_strictly_after_current_not_at_it() -> None:
    start = at(NY, 2026, 1, 1, 9)
    assert nxt("FREQ=DAILY", start, at(NY, 2026, 1, 3, 9), NY, 3) == at(NY, 2026, 1, 4, 9)
    assert nxt("FREQ=DAILY", start, at(NY, 2026, 1, 3, 8, 59), NY, 3) == at(NY, 2026, 1, 3, 9)


def test_completed_late_gives_the_next_date_after_completion() -> None:
    start = at(NY, 2026, 1, 1, 9)
    assert nxt("FREQ=WEEKLY;BYDAY=TU,TH", start, at(NY, 2026, 2, 12, 18), NY, 4) == at(NY, 2026, 2, 17, 9)


def test_current_before_series_start_gives_the_first_instance() -> None:
    start = at(NY, 2026, 6, 1, 9)
    assert nxt("FREQ=DAILY", start, at(NY, 2026, 5, 1), NY) == start.astimezone(UTC)


def test_old_series_far_in_the_future_is_fast() -> None:
    start = at(NY, 2000, 1, 1, 9)
    begin = time.perf_counter()
    for _ in range(50):
        assert nxt("FREQ=DAILY", start, at(NY, 2090, 6, 15, 12), NY) == at(NY, 2090, 6, 16, 9)
    assert time.perf_counter() - begin < 1.0


@pytest.mark.parametrize(
    ("rule", "start"),
    [
        ("FREQ=MONTHLY;BYMONTHDAY=31;BYDAY=1MO", at(NY, 2026, 1, 1, 9)),
        ("FREQ=MONTHLY;BYMONTHDAY=1,2,3,4,5,6,7;BYDAY=-1MO", at(NY, 2026, 1, 1, 9)),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=MO", at(NY, 2026, 1, 6, 9)),  # a Tuesday: always Tuesdays
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=30", at(NY, 2026, 2, 10, 9)),  # only Februaries
        ("FREQ=DAILY;INTERVAL=1000000000000000000000000", at(NY, 2026, 1, 1, 9)),
        ("FREQ=YEARLY", at(NY, 9999, 12, 30, 9)),
        ("FREQ=DAILY", at(NY, 9999, 12, 31, 9)),
    ],
)
def test_rules_without_another_occurrence_end_after_a_bounded_search(rule: str, start: datetime) -> None:
    begin = time.perf_counter()
    assert nxt(rule, start, start, NY) is None
    assert len(list(occurrences(parse_rrule(rule), start, NY, 10))) == 1
    assert time.perf_counter() - begin < 2.0


def test_end_of_time_current_is_not_an_error() -> None:
    start = at(NY, 2026, 1, 1, 9)
    assert nxt("FREQ=DAILY", start, datetime.max.replace(tzinfo=UTC), "Asia/Tokyo") is None


# ----------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize(
    "tz",
    [
        "Mars/Olympus_Mons",
        "",
        "America",
        "America/",
        "../etc/passwd",
        "/etc/localtime",
        "localtime",
        "america/new_york",
        "X" * 300,
        "Europe/Berlin\x00",
    ],
)
def test_invalid_time_zone(tz: str) -> None:
    start = at(NY, 2026, 1, 1, 9)
    with pytest.raises(RecurrenceError) as info:
        nxt("FREQ=DAILY", start, start, tz)
    assert info.value.part == "tz"
    with pytest.raises(RecurrenceError):
        occurrences(parse_rrule("FREQ=DAILY"), start, tz, 3)


def test_non_string_time_zone() -> None:
    start = at(NY, 2026, 1, 1, 9)
    with pytest.raises(RecurrenceError):
        next_occurrence(
            parse_rrule("FREQ=DAILY"),
            series_start=start,
            current=start,
            tz=ZoneInfo(NY),  # type: ignore[arg-type]
            occurrences_so_far=1,
        )


def test_naive_datetimes_are_refused() -> None:
    rule = parse_rrule("FREQ=DAILY")
    aware = at(NY, 2026, 1, 1, 9)
    naive = datetime(2026, 1, 1, 9)
    with pytest.raises(RecurrenceError) as info:
        next_occurrence(rule, series_start=naive, current=aware, tz=NY, occurrences_so_far=1)
    assert info.value.part == "series_start"
    with pytest.raises(RecurrenceError) as info:
        next_occurrence(rule, series_start=aware, current=naive, tz=NY, occurrences_so_far=1)
    assert info.value.part == "current"
    with pytest.raises(RecurrenceError):
        occurrences(rule, naive, NY, 1)


@pytest.mark.parametrize("so_far", [0, -1, True, 1.0, "1"])
def test_occurrences_so_far_must_be_a_positive_integer(so_far: object) -> None:
    start = at(NY, 2026, 1, 1, 9)
    with pytest.raises(RecurrenceError) as info:
        next_occurrence(
            parse_rrule("FREQ=DAILY"),
            series_start=start,
            current=start,
            tz=NY,
            occurrences_so_far=so_far,  # type: ignore[arg-type]
        )
    assert info.value.part == "occurrences_so_far"


def test_rule_must_be_parsed_first() -> None:
    start = at(NY, 2026, 1, 1, 9)
    with pytest.raises(RecurrenceError):
        next_occurrence("FREQ=DAILY", series_start=start, current=start, tz=NY, occurrences_so_far=1)  # type: ignore[arg-type]


def test_series_start_out_of_range() -> None:
    start = at(NY, 9999, 12, 31, 23)  # past datetime.max in UTC
    with pytest.raises(RecurrenceError) as info:
        occurrences(parse_rrule("FREQ=DAILY"), start, NY, 1)
    assert info.value.part == "series_start"


def test_occurrences_limit() -> None:
    rule = parse_rrule("FREQ=DAILY")
    start = at(NY, 2026, 1, 1, 9)
    assert list(occurrences(rule, start, NY, 0)) == []
    assert list(occurrences(rule, start, NY, 1)) == [start.astimezone(UTC)]
    assert len(list(occurrences(rule, start, NY, 400))) == 400
    with pytest.raises(RecurrenceError):
        occurrences(rule, start, NY, -1)


def test_occurrences_checks_arguments_at_the_call() -> None:
    # A generator would only fail at the first next(); this raises right away.
    with pytest.raises(RecurrenceError):
        occurrences(parse_rrule("FREQ=DAILY"), datetime(2026, 1, 1), NY, 5)


def test_daylight_series_in_utc_has_no_shift() -> None:
    got = list(occurrences(parse_rrule("FREQ=DAILY"), utc(2026, 3, 7, 2, 30), "UTC", 3))
    assert got == [utc(2026, 3, 7, 2, 30), utc(2026, 3, 8, 2, 30), utc(2026, 3, 9, 2, 30)]
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(got))
