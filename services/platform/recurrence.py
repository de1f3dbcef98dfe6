"""Recurrence rules for recurring tasks: an RFC 5545 RRULE subset and a wall-clock engine.

The backend uses this module to validate and store a task's rule (:func:`parse_rrule`, then
:func:`format_rrule` for the canonical text it stores). The worker uses it to compute the due
date of the next instance when one is completed (:func:`next_occurrence`). Both sides run this
one implementation, so what the API accepts is exactly what the worker can compute.

Supported subset
----------------
``[RRULE:]FREQ=...;INTERVAL=...;BYDAY=...;BYMONTHDAY=...;COUNT=...|UNTIL=...``

========== ============================================================================
part       accepted values
========== ============================================================================
FREQ       ``DAILY``, ``WEEKLY``, ``MONTHLY``, ``YEARLY`` (required)
INTERVAL   integer >= 1 (default 1)
BYDAY      comma list of ``MO`` .. ``SU``; with ``FREQ=MONTHLY`` also ordinal forms
           ``1MO`` .. ``5MO``, ``+2TU``, ``-1FR`` .. ``-5FR`` (nth / nth-from-last weekday
           of the month). Ordinals are refused with other frequencies.
BYMONTHDAY comma list of 1..31 and -1..-31 (-1 is the last day of the month). Refused
           with ``FREQ=WEEKLY``, as RFC 5545 forbids that combination.
COUNT      integer >= 1: the total number of instances, the first one included
UNTIL      ``YYYYMMDDTHHMMSSZ`` (a UTC instant, inclusive) or ``YYYYMMDD`` (a date,
           inclusive, read as a calendar date in the task's time zone)
========== ============================================================================

Names and values are case-insensitive and ``+`` signs are allowed, as in RFC 5545. COUNT and
UNTIL are mutually exclusive. Anything else — an unknown or unsupported part (``WKST``,
``BYMONTH``, ``BYSETPOS``, ``BYHOUR`` ...), a part given twice, an empty or malformed value,
``INTERVAL`` or ``COUNT`` below 1, ``BYMONTHDAY=0`` — raises :class:`RecurrenceError`, a
``ValueError`` whose message names the offending part and whose ``part`` attribute holds that
part's name, so an API can report it as a 422 field error (pydantic validators turn a
``ValueError`` into one as is).

:func:`format_rrule` (also ``str(rule)``) gives the canonical text: no ``RRULE:`` prefix,
parts in the order FREQ, INTERVAL (left out when 1), BYDAY, BYMONTHDAY, COUNT / UNTIL,
upper case, list values de-duplicated and sorted (weekdays Monday first, plain weekdays
before ordinals; month days ascending, then the negative ones from -1 down).
``parse_rrule(format_rrule(rule)) == rule`` for every rule.

Semantics, and why
------------------
Every rule accepted here means what RFC 5545 says it means, so a stored rule can be
exported to any calendar client and be read the same way. In detail:

* **The first instance.** ``series_start`` (the due date of the first instance, RFC 5545's
  DTSTART) is always the first occurrence, even if it does not match the rule; it counts
  toward COUNT. (This is the RFC's rule; python-dateutil differs and drops an unmatched
  DTSTART.) The rule then generates the occurrences after it.
* **Wall-clock time.** Occurrences are computed on the task's local wall-clock time in the
  IANA zone ``tz``: a task due at 09:00 every day stays at 09:00 local time across DST
  changes, and its UTC time moves instead. The time of day is that of ``series_start``
  seen in ``tz``. Dates are generated on naive local time, then each one is localized:

  - a local time that does not exist (the spring-forward gap) is shifted forward by the
    length of the gap (02:30 on the day New York springs forward becomes 03:30 EDT); the
    following occurrences are back at 02:30;
  - a local time that exists twice (fall back) is the first of the two (``fold=0``, the
    daylight-time reading), so an instance is neither skipped nor duplicated.

  Results are returned as timezone-aware datetimes **in UTC** (``tzinfo=datetime.UTC``):
  that is what the database and the events store; convert with ``.astimezone(ZoneInfo(tz))``
  for display. Two local dates that map to the same instant (a zone that skipped a whole
  day, like Pacific/Apia on 2011-12-30) give one occurrence, so results strictly increase.
* **Month ends.** As RFC 5545 requires, a date that does not exist in a period is skipped,
  never moved to a nearby day: a ``FREQ=MONTHLY`` rule starting on the 31st occurs only in
  months that have a 31st (Jan 31, Mar 31, May 31, ...), and ``BYMONTHDAY=31`` likewise.
  Rolling back to the 30th would make the series drift and disagree with every calendar
  client. For "the last day of every month" use ``BYMONTHDAY=-1`` (Jan 31, Feb 28 or 29,
  Mar 31, Apr 30, ...).
* **Leap days.** ``FREQ=YEARLY`` from Feb 29 occurs only in leap years (2024, 2028, ...,
  and not in 2100). For "the last day of February" use ``FREQ=MONTHLY;INTERVAL=12;
  BYMONTHDAY=-1`` starting in February.
* **Expand or limit.** BYDAY and BYMONTHDAY follow the RFC 5545 table: with DAILY they
  filter the days; WEEKLY + BYDAY gives those weekdays in each week; MONTHLY + BYMONTHDAY or
  BYDAY gives those days of each month, and when both are present BYDAY filters the
  BYMONTHDAY days (``BYMONTHDAY=13;BYDAY=FR`` is Friday the 13th). A BYDAY list is a union:
  ``BYDAY=MO,1FR`` (MONTHLY) is every Monday plus the first Friday (python-dateutil
  intersects the two kinds and yields nothing here; one reason this module has its own
  expansion). YEARLY + BYMONTHDAY without BYMONTH (which is not supported) means those
  days in every month of the year, and YEARLY + BYDAY every such weekday of the year:
  that is what the RFC says, even if ``FREQ=MONTHLY`` / ``WEEKLY`` say it more plainly.
* **Weeks** start on Monday (RFC 5545's default ``WKST=MO``; WKST itself is not supported).
  It matters for ``FREQ=WEEKLY;INTERVAL=2;BYDAY=...``: the week of ``series_start`` is
  the first week, every second Monday-to-Sunday week after it is on.
* **COUNT** counts instances, the first included. :func:`next_occurrence` trusts the
  caller's ``occurrences_so_far`` (the instances that exist, the current one included)
  instead of re-counting rule positions, so a series whose instances were moved or
  completed late still ends after exactly COUNT instances.
* **UNTIL** is inclusive. The UTC form bounds the instant. The date form
  (``UNTIL=20261231``) means "up to and including that calendar day in ``tz``": it bounds
  the occurrence's local date, which is what a user picking an end date means.
* **Bounded work.** :func:`next_occurrence` starts from the period containing ``current``
  (not from ``series_start``), so its cost does not grow with the age of the series. A rule
  that can produce no further date, e.g. ``FREQ=MONTHLY;BYMONTHDAY=31;BYDAY=1MO`` or
  ``FREQ=DAILY;INTERVAL=7;BYDAY=MO`` from a Tuesday, ends the series (None) after a bounded
  search: the Gregorian calendar repeats every 400 years (146097 days = 20871 weeks = 4800
  months), so periods ``INTERVAL`` apart repeat after at most ``cycle / gcd(INTERVAL, cycle)``
  periods; when that many periods in a row have no candidate date, none will ever have
  one. The search also stops at year 9999 (the end of ``datetime``). Rule texts longer
  than 1000 characters are refused.
"""

from __future__ import annotations

import calendar
import functools
import math
import re
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import IntEnum, StrEnum

__all__ = [
    "ByDay",
    "Frequency",
    "RecurrenceError",
    "RecurrenceRule",
    "Weekday",
    "format_rrule",
    "next_occurrence",
    "occurrences",
    "parse_rrule",
]

MAX_RULE_LENGTH = 1000
"""Longest rule text :func:`parse_rrule` accepts (the longest meaningful one is far shorter)."""

_SUPPORTED_PARTS = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL")


class RecurrenceError(ValueError):
    """An invalid rule or argument. ``part`` names the offending RRULE part or argument."""

    def __init__(self, message: str, *, part: str | None = None) -> None:
        super().__init__(message)
        self.part = part

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_error, (str(self), self.part))


def _rebuild_error(message: str, part: str | None) -> RecurrenceError:
    return RecurrenceError(message, part=part)


class Frequency(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    YEARLY = "YEARLY"


class Weekday(IntEnum):
    """RFC 5545 weekday codes, numbered like :meth:`datetime.date.weekday` (Monday is 0)."""

    MO = 0
    TU = 1
    WE = 2
    TH = 3
    FR = 4
    SA = 5
    SU = 6


def _show(value: object, limit: int = 40) -> str:
    """A value quoted for an error message, cut short so a huge input is not echoed back."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- model


_BYDAY_RE = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)", re.ASCII)
_MONTHDAY_RE = re.compile(r"[+-]?[0-9]{1,2}", re.ASCII)
_UINT_RE = re.compile(r"[0-9]+", re.ASCII)
_UNTIL_DATE_RE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})", re.ASCII)
_UNTIL_DATETIME_RE = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})(Z?)", re.ASCII
)


@dataclass(frozen=True, slots=True)
class ByDay:
    """One BYDAY entry: a weekday, optionally the ``ordinal``-th of the month (1..5, -1..-5)."""

    weekday: Weekday
    ordinal: int | None = None

    def __post_init__(self) -> None:
        weekday: object = self.weekday
        if isinstance(weekday, str) and weekday.upper() in Weekday.__members__:
            weekday = Weekday[weekday.upper()]
        elif isinstance(weekday, int) and not isinstance(weekday, bool) and 0 <= weekday <= 6:
            weekday = Weekday(weekday)
        else:
            raise RecurrenceError(f"BYDAY weekday {_show(weekday)} is not one of MO..SU", part="BYDAY")
        object.__setattr__(self, "weekday", weekday)
        if self.ordinal is not None and (not _is_int(self.ordinal) or not (1 <= abs(self.ordinal) <= 5)):
            raise RecurrenceError(
                f"BYDAY ordinal {_show(self.ordinal)} is invalid: a month has a 1st to 5th and a "
                f"last (-1) to 5th-last (-5) of each weekday",
                part="BYDAY",
            )

    @classmethod
    def parse(cls, text: str) -> ByDay:
        """Parse one BYDAY item (``MO``, ``1MO``, ``+2TU``, ``-1FR``)."""
        match = _BYDAY_RE.fullmatch(text.upper())
        if match is None:
            raise RecurrenceError(
                f"BYDAY value {_show(text)} is invalid; expected MO..SU, optionally preceded by an "
                f"ordinal such as 1MO or -1FR",
                part="BYDAY",
            )
        ordinal = int(match.group(1)) if match.group(1) is not None else None
        if ordinal == 0:
            raise RecurrenceError(
                f"BYDAY value {_show(text)} is invalid: the ordinal must not be 0", part="BYDAY"
            )
        return cls(Weekday[match.group(2)], ordinal)

    def __str__(self) -> str:
        return f"{'' if self.ordinal is None else self.ordinal}{self.weekday.name}"


def _byday_sort_key(item: ByDay) -> tuple[int, int, int]:
    if item.ordinal is None:
        return (item.weekday, 0, 0)
    return (item.weekday, 1 if item.ordinal > 0 else 2, abs(item.ordinal))


def _monthday_sort_key(value: int) -> tuple[bool, int]:
    return (value < 0, abs(value))


@dataclass(frozen=True, slots=True)
class RecurrenceRule:
    """A validated rule in canonical form (list parts de-duplicated and sorted).

    Build one with :func:`parse_rrule`, or directly: ``RecurrenceRule(Frequency.WEEKLY,
    interval=2, by_day=(ByDay(Weekday.MO),))``. Construction validates exactly like parsing
    and raises :class:`RecurrenceError`. ``until`` is a :class:`date` (inclusive local date)
    or a timezone-aware :class:`datetime` with whole seconds, kept in UTC.
    """

    freq: Frequency
    interval: int = 1
    by_day: tuple[ByDay, ...] = ()
    by_month_day: tuple[int, ...] = ()
    count: int | None = None
    until: date | datetime | None = None

    def __post_init__(self) -> None:
        freq: object = self.freq
        if isinstance(freq, str) and freq.upper() in Frequency.__members__:
            freq = Frequency(freq.upper())
        else:
            raise RecurrenceError(
                f"FREQ={_show(freq)} is not supported; expected one of DAILY, WEEKLY, MONTHLY, YEARLY",
                part="FREQ",
            )
        object.__setattr__(self, "freq", freq)

        if not _is_int(self.interval) or self.interval < 1:
            raise RecurrenceError(
                f"INTERVAL must be a positive integer, got {_show(self.interval)}", part="INTERVAL"
            )

        by_day = tuple(self._coerce_by_day(self.by_day))
        for item in by_day:
            if item.ordinal is not None and freq is not Frequency.MONTHLY:
                raise RecurrenceError(
                    f"BYDAY ordinal {str(item)!r} is only supported with FREQ=MONTHLY", part="BYDAY"
                )
        object.__setattr__(self, "by_day", tuple(sorted(set(by_day), key=_byday_sort_key)))

        if isinstance(self.by_month_day, (str, bytes)) or not isinstance(self.by_month_day, Iterable):
            raise RecurrenceError("BYMONTHDAY must be a list of integers", part="BYMONTHDAY")
        month_days = tuple(self.by_month_day)
        for value in month_days:
            if not _is_int(value) or not (1 <= abs(value) <= 31):
                raise RecurrenceError(
                    f"BYMONTHDAY value {_show(value)} is invalid; expected 1..31 or -1..-31",
                    part="BYMONTHDAY",
                )
        if month_days and freq is Frequency.WEEKLY:
            raise RecurrenceError("BYMONTHDAY is not allowed with FREQ=WEEKLY (RFC 5545)", part="BYMONTHDAY")
        object.__setattr__(self, "by_month_day", tuple(sorted(set(month_days), key=_monthday_sort_key)))

        if self.count is not None and (not _is_int(self.count) or self.count < 1):
            raise RecurrenceError(f"COUNT must be a positive integer, got {_show(self.count)}", part="COUNT")

        until = self.until
        if isinstance(until, datetime):
            if until.tzinfo is None or until.utcoffset() is None:
                raise RecurrenceError("UNTIL date-time must be timezone-aware (UTC)", part="UNTIL")
            if until.microsecond:
                raise RecurrenceError("UNTIL date-time must have whole seconds", part="UNTIL")
            object.__setattr__(self, "until", until.astimezone(UTC))
        elif until is not None and not isinstance(until, date):
            raise RecurrenceError(
                f"UNTIL must be a date or a UTC date-time, got {_show(until)}", part="UNTIL"
            )
        if self.count is not None and self.until is not None:
            raise RecurrenceError("COUNT and UNTIL must not both be given (RFC 5545)", part="UNTIL")

    @staticmethod
    def _coerce_by_day(items: object) -> Iterator[ByDay]:
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise RecurrenceError("BYDAY must be a list of weekdays", part="BYDAY")
        for item in items:
            if isinstance(item, ByDay):
                yield item
            elif isinstance(item, str):
                yield ByDay.parse(item)
            else:
                raise RecurrenceError(f"BYDAY value {_show(item)} is invalid", part="BYDAY")

    def __str__(self) -> str:
        return format_rrule(self)


# --------------------------------------------------------------------------- text form


def _parse_positive_int(part: str, value: str) -> int:
    if not _UINT_RE.fullmatch(value) or int(value) < 1:
        raise RecurrenceError(f"{part} must be a positive integer, got {_show(value)}", part=part)
    return int(value)


def _parse_until(value: str) -> date | datetime:
    text = value.upper()
    try:
        if match := _UNTIL_DATE_RE.fullmatch(text):
            year, month, day = (int(g) for g in match.groups())
            return date(year, month, day)
        if match := _UNTIL_DATETIME_RE.fullmatch(text):
            if not match.group(7):
                raise RecurrenceError(
                    f"UNTIL {_show(value)} must be a UTC date-time ending in 'Z' (e.g. 20261231T235959Z) "
                    f"or a date (e.g. 20261231)",
                    part="UNTIL",
                )
            year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:  # a well-formed but impossible date such as 20260230
        if isinstance(exc, RecurrenceError):
            raise
        raise RecurrenceError(f"UNTIL {_show(value)} is not a valid date: {exc}", part="UNTIL") from None
    raise RecurrenceError(
        f"UNTIL {_show(value)} is invalid; expected a UTC date-time such as 20261231T235959Z or a date "
        f"such as 20261231",
        part="UNTIL",
    )


def _split_list(part: str, value: str) -> list[str]:
    items = value.split(",")
    if any(not item for item in items):
        raise RecurrenceError(f"{part} has an empty list item in {_show(value)}", part=part)
    return items


def parse_rrule(text: str) -> RecurrenceRule:
    """Parse an RRULE (optionally prefixed ``RRULE:``) into a :class:`RecurrenceRule`.

    Raises :class:`RecurrenceError` (a ``ValueError``) naming the offending part.
    """
    if not isinstance(text, str):
        raise RecurrenceError("RRULE must be a string", part="RRULE")
    if not text.isascii():  # also keeps str.upper() from mapping e.g. U+017F (long s) onto 'S'
        raise RecurrenceError("RRULE must contain only ASCII characters", part="RRULE")
    body = text.strip()
    if len(body) > MAX_RULE_LENGTH:
        raise RecurrenceError(f"RRULE is longer than {MAX_RULE_LENGTH} characters", part="RRULE")
    if body[:6].upper() == "RRULE:":
        body = body[6:]
    if not body:
        raise RecurrenceError("RRULE is empty; expected e.g. 'FREQ=DAILY'", part="RRULE")

    raw: dict[str, str] = {}
    for chunk in body.split(";"):
        name, sep, value = chunk.partition("=")
        key = name.upper()
        if not sep or not name:
            raise RecurrenceError(
                f"RRULE part {_show(chunk)} is malformed; expected NAME=VALUE", part="RRULE"
            )
        if key not in _SUPPORTED_PARTS:
            raise RecurrenceError(
                f"RRULE part {_show(name)} is not supported; supported parts: {', '.join(_SUPPORTED_PARTS)}",
                part=key if len(key) <= 40 else "RRULE",
            )
        if key in raw:
            raise RecurrenceError(f"{key} is given more than once", part=key)
        if not value:
            raise RecurrenceError(f"{key} has an empty value", part=key)
        raw[key] = value

    if "FREQ" not in raw:
        raise RecurrenceError("FREQ is required (DAILY, WEEKLY, MONTHLY or YEARLY)", part="FREQ")
    freq = raw["FREQ"].upper()
    if freq not in Frequency.__members__:
        raise RecurrenceError(
            f"FREQ={_show(raw['FREQ'])} is not supported; expected one of DAILY, WEEKLY, MONTHLY, YEARLY",
            part="FREQ",
        )

    by_day: tuple[ByDay, ...] = ()
    if "BYDAY" in raw:
        by_day = tuple(ByDay.parse(item) for item in _split_list("BYDAY", raw["BYDAY"]))

    by_month_day: list[int] = []
    for item in _split_list("BYMONTHDAY", raw["BYMONTHDAY"]) if "BYMONTHDAY" in raw else ():
        if not _MONTHDAY_RE.fullmatch(item) or not (1 <= abs(int(item)) <= 31):
            raise RecurrenceError(
                f"BYMONTHDAY value {_show(item)} is invalid; expected 1..31 or -1..-31", part="BYMONTHDAY"
            )
        by_month_day.append(int(item))

    return RecurrenceRule(
        freq=Frequency(freq),
        interval=_parse_positive_int("INTERVAL", raw["INTERVAL"]) if "INTERVAL" in raw else 1,
        by_day=by_day,
        by_month_day=tuple(by_month_day),
        count=_parse_positive_int("COUNT", raw["COUNT"]) if "COUNT" in raw else None,
        until=_parse_until(raw["UNTIL"]) if "UNTIL" in raw else None,
    )


def _format_until(until: date | datetime) -> str:
    if isinstance(until, datetime):
        u = until.astimezone(UTC)
        return f"{u.year:04d}{u.month:02d}{u.day:02d}T{u.hour:02d}{u.minute:02d}{u.second:02d}Z"
    return f"{until.year:04d}{until.month:02d}{until.day:02d}"


def format_rrule(rule: RecurrenceRule) -> str:
    """The canonical RRULE text of ``rule`` (no ``RRULE:`` prefix); see the module docstring."""
    parts = [f"FREQ={rule.freq.value}"]
    if rule.interval != 1:
        parts.append(f"INTERVAL={rule.interval}")
    if rule.by_day:
        parts.append("BYDAY=" + ",".join(str(item) for item in rule.by_day))
    if rule.by_month_day:
        parts.append("BYMONTHDAY=" + ",".join(str(value) for value in rule.by_month_day))
    if rule.count is not None:
        parts.append(f"COUNT={rule.count}")
    if rule.until is not None:
        parts.append(f"UNTIL={_format_until(rule.until)}")
    return ";".join(parts)


# --------------------------------------------------------------------------- engine

# Periods after which the Gregorian calendar repeats exactly (400 years).
_CYCLE_PERIODS = {
    Frequency.DAILY: 146_097,
    Frequency.WEEKLY: 20_871,
    Frequency.MONTHLY: 4_800,
    Frequency.YEARLY: 400,
}
_MAX_ORDINAL = date.max.toordinal()


@functools.lru_cache(maxsize=1)
def _known_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def resolve_zone(tz: object) -> zoneinfo.ZoneInfo:
    """The IANA zone named `tz`; the one check every service uses, so they agree on what is valid."""
    # "localtime" is the host's zone, not an IANA name: refuse it so results never depend on the host.
    if not isinstance(tz, str) or tz == "localtime" or tz not in _known_zone_names():
        raise RecurrenceError(f"time zone {_show(tz)} is not a known IANA time zone name", part="tz")
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise RecurrenceError(
            f"time zone {_show(tz)} is not a known IANA time zone name", part="tz"
        ) from None


def _require_aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise RecurrenceError(f"{name} must be a timezone-aware datetime", part=name)
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise RecurrenceError(f"{name} is out of the supported date range", part=name) from None
    return value


class _Expander:
    """Generates a rule's candidate local dates period by period (a period is one day, week,
    month or year, ``interval`` of them apart), counting from the period of ``start``."""

    def __init__(self, rule: RecurrenceRule, start: date) -> None:
        self.freq = rule.freq
        self.interval = rule.interval
        self.start = start
        self.plain = frozenset(int(d.weekday) for d in rule.by_day if d.ordinal is None)
        self.nth = frozenset((int(d.weekday), d.ordinal) for d in rule.by_day if d.ordinal is not None)
        self.has_by_day = bool(rule.by_day)
        self.month_days = rule.by_month_day
        self.pos_days = frozenset(v for v in rule.by_month_day if v > 0)
        self.neg_days = frozenset(v for v in rule.by_month_day if v < 0)
        cycle = _CYCLE_PERIODS[rule.freq]
        self.cycle = cycle // math.gcd(rule.interval, cycle)
        self.start_ordinal = start.toordinal()
        self.week_ordinal = self.start_ordinal - start.weekday()
        self.month_index = start.year * 12 + start.month - 1

    def first_period_on_or_before(self, day: date) -> int:
        """Index of a period that starts on or before ``day`` (0 at the earliest)."""
        if self.freq is Frequency.DAILY:
            units = day.toordinal() - self.start_ordinal
        elif self.freq is Frequency.WEEKLY:
            units = (day.toordinal() - day.weekday() - self.week_ordinal) // 7
        elif self.freq is Frequency.MONTHLY:
            units = day.year * 12 + day.month - 1 - self.month_index
        else:
            units = day.year - self.start.year
        return max(0, units // self.interval)

    def _by_day_matches(self, day: int, weekday: int, month_length: int) -> bool:
        if weekday in self.plain:
            return True
        return bool(self.nth) and (
            (weekday, (day - 1) // 7 + 1) in self.nth
            or (weekday, -((month_length - day) // 7 + 1)) in self.nth
        )

    def _month_days(self, year: int, month: int) -> list[int]:
        """Days of the month given by BYMONTHDAY, filtered by BYDAY when both are present."""
        first_weekday, length = calendar.monthrange(year, month)
        resolved = sorted(
            {d for v in self.month_days if 1 <= (d := v if v > 0 else length + 1 + v) <= length}
        )
        if not self.has_by_day:
            return resolved
        return [d for d in resolved if self._by_day_matches(d, (first_weekday + d - 1) % 7, length)]

    def dates_in_period(self, k: int) -> list[date] | None:
        """The candidate dates of period ``k`` in ascending order; None past year 9999."""
        step = k * self.interval
        if self.freq is Frequency.DAILY:
            ordinal = self.start_ordinal + step
            if ordinal > _MAX_ORDINAL:
                return None
            day = date.fromordinal(ordinal)
            if self.plain and day.weekday() not in self.plain:
                return []
            if self.month_days:
                length = calendar.monthrange(day.year, day.month)[1]
                if day.day not in self.pos_days and day.day - length - 1 not in self.neg_days:
                    return []
            return [day]

        if self.freq is Frequency.WEEKLY:
            week = self.week_ordinal + 7 * step
            if week > _MAX_ORDINAL:
                return None
            weekdays = sorted(self.plain) if self.plain else [self.start.weekday()]
            return [date.fromordinal(week + wd) for wd in weekdays if week + wd <= _MAX_ORDINAL]

        if self.freq is Frequency.MONTHLY:
            year, month0 = divmod(self.month_index + step, 12)
            if year > date.max.year:
                return None
            month = month0 + 1
            if self.month_days:
                return [date(year, month, d) for d in self._month_days(year, month)]
            first_weekday, length = calendar.monthrange(year, month)
            if self.has_by_day:
                return [
                    date(year, month, d)
                    for d in range(1, length + 1)
                    if self._by_day_matches(d, (first_weekday + d - 1) % 7, length)
                ]
            return [date(year, month, self.start.day)] if self.start.day <= length else []

        year = self.start.year + step
        if year > date.max.year:
            return None
        if self.month_days:
            return [date(year, m, d) for m in range(1, 13) for d in self._month_days(year, m)]
        if self.plain:
            first = date(year, 1, 1).toordinal()
            last = date(year, 12, 31).toordinal()
            jan1_weekday = date(year, 1, 1).weekday()
            ordinals = sorted(
                o for wd in self.plain for o in range(first + (wd - jan1_weekday) % 7, last + 1, 7)
            )
            return [date.fromordinal(o) for o in ordinals]
        if self.start.month == 2 and self.start.day == 29 and not calendar.isleap(year):
            return []
        return [date(year, self.start.month, self.start.day)]

    def dates_from(self, first_period: int) -> Iterator[date]:
        """Candidate dates after ``start``, from period ``first_period`` on, in ascending order.

        Ends after ``cycle`` consecutive periods without a candidate (then no later period
        can have one: the calendar has repeated) or past year 9999.
        """
        empty_run = 0
        k = first_period
        while True:
            days = self.dates_in_period(k)
            if days is None:
                return
            if days:
                empty_run = 0
                for day in days:
                    if day > self.start:
                        yield day
            else:
                empty_run += 1
                if empty_run >= self.cycle:
                    return
            k += 1


def _instants_after(
    rule: RecurrenceRule, zone: zoneinfo.ZoneInfo, local_start: datetime, after: datetime
) -> Iterator[datetime]:
    """The rule's occurrences after ``local_start`` whose instant is strictly after ``after``,
    as increasing UTC datetimes, stopping at UNTIL."""
    expander = _Expander(rule, local_start.date())
    time_of_day = local_start.time()
    try:
        after_local_day = after.astimezone(zone).date()
    except OverflowError:  # past the end of datetime in this zone: nothing can follow
        return
    # Three days of slack: UTC offsets differ by at most a day, so nothing earlier can be after `after`.
    search_from = date.fromordinal(max(1, after_local_day.toordinal() - 3))
    until = rule.until
    last = after
    for day in expander.dates_from(expander.first_period_on_or_before(search_from)):
        try:
            instant = datetime.combine(day, time_of_day, tzinfo=zone).astimezone(UTC)
        except OverflowError:
            return
        if isinstance(until, datetime):
            if instant > until:
                return
        elif until is not None and instant.astimezone(zone).date() > until:
            return
        if instant <= last:
            continue
        last = instant
        yield instant


def _local_start(series_start: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """Naive local wall time of the first instance; fold=0, so later ambiguous times take the first reading."""
    try:
        return series_start.astimezone(zone).replace(tzinfo=None, fold=0)
    except OverflowError:
        raise RecurrenceError(
            "series_start is out of the supported date range", part="series_start"
        ) from None


def next_occurrence(
    rule: RecurrenceRule,
    *,
    series_start: datetime,
    current: datetime,
    tz: str,
    occurrences_so_far: int,
) -> datetime | None:
    """The first occurrence of the series strictly after ``current``, in UTC, or None.

    ``series_start`` is the timezone-aware due date of the first instance, ``current`` a
    timezone-aware instant (normally the due date of the instance just completed), ``tz``
    the task's IANA zone, ``occurrences_so_far`` the number of instances that exist, the
    current one included (>= 1). None when the series has ended: COUNT reached, the next
    occurrence would be past UNTIL, or the rule can produce no further date. If
    ``current`` is before ``series_start``, the answer is ``series_start`` itself.

    Raises :class:`RecurrenceError` for an unknown zone, a naive datetime or a bad count.
    """
    if not isinstance(rule, RecurrenceRule):
        raise RecurrenceError("rule must be a RecurrenceRule (see parse_rrule)", part="rule")
    zone = resolve_zone(tz)
    _require_aware(series_start, "series_start")
    _require_aware(current, "current")
    if not _is_int(occurrences_so_far) or occurrences_so_far < 1:
        raise RecurrenceError(
            f"occurrences_so_far must be an integer >= 1 (the current instance included), got "
            f"{_show(occurrences_so_far)}",
            part="occurrences_so_far",
        )
    if rule.count is not None and occurrences_so_far >= rule.count:
        return None
    local_start = _local_start(series_start, zone)
    if current < series_start:
        return series_start.astimezone(UTC)
    return next(_instants_after(rule, zone, local_start, current), None)


def occurrences(rule: RecurrenceRule, series_start: datetime, tz: str, limit: int) -> Iterator[datetime]:
    """The series' occurrences in order, in UTC: ``series_start`` first, at most ``limit`` of them.

    Stops earlier at COUNT, UNTIL, or when the rule can produce no further date. Arguments
    are checked at the call, not at the first ``next()``. Element ``i`` (0-based) equals
    ``next_occurrence(rule, series_start=..., current=<element i-1>, tz=...,
    occurrences_so_far=i)``.
    """
    if not isinstance(rule, RecurrenceRule):
        raise RecurrenceError("rule must be a RecurrenceRule (see parse_rrule)", part="rule")
    zone = resolve_zone(tz)
    _require_aware(series_start, "series_start")
    if not _is_int(limit) or limit < 0:
        raise RecurrenceError(f"limit must be an integer >= 0, got {_show(limit)}", part="limit")
    local_start = _local_start(series_start, zone)
    total = limit if rule.count is None else min(limit, rule.count)
    return _occurrences(rule, zone, series_start, local_start, total)


def _occurrences(
    rule: RecurrenceRule, zone: zoneinfo.ZoneInfo, series_start: datetime, local_start: datetime, total: int
) -> Iterator[datetime]:
    if total < 1:
        return
    yield series_start.astimezone(UTC)
    emitted = 1
    if emitted >= total:
        return
    for instant in _instants_after(rule, zone, local_start, series_start):
        yield instant
        emitted += 1
        if emitted >= total:
            return
