"""Dapr job schedules: 6-field cron with seconds, and the @-descriptors, as the Scheduler parses them.

The Dapr Scheduler uses robfig/cron v3 with Second|Minute|Hour|Dom|Month|Dow|Descriptor
(go-etcd-cron internal/scheduler/builder.go), so schedules are "sec min hour dom month dow",
"@every <Go duration>" (rounded down to whole seconds, at least 1s), or @yearly/@annually,
@monthly, @weekly, @daily/@midnight, @hourly. Day-of-month and day-of-week combine with OR
when both are restricted, AND when either is `*`/`?` (robfig's rule). Times are UTC.
Docs: https://docs.dapr.io/developing-applications/building-blocks/jobs/jobs-features-concepts/
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from console.sandbox.sidecar.resiliency import parse_duration

_MONTHS = {m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_BOUNDS = [(0, 59, {}), (0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 6, _DAYS)]
_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *", "@hourly": "0 0 * * * *",
}


class CronError(ValueError):
    """A schedule the Scheduler would refuse; the message follows robfig/cron's wording."""


def _value(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    try:
        return int(text)
    except ValueError:
        raise CronError(f"failed to parse int from {text}: strconv.Atoi: parsing \"{text}\": invalid syntax") from None


def _field(text: str, lo: int, hi: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = _value(step_text, {}) if step_text else 1
        if rng in ("*", "?"):
            start, end = lo, hi
            star = star or not step_text
        else:
            a, dash, b = rng.partition("-")
            start = _value(a, names)
            end = _value(b, names) if dash else (hi if step_text else start)
        if start < lo:
            raise CronError(f"beginning of range ({start}) below minimum ({lo}): {part}")
        if end > hi:
            raise CronError(f"end of range ({end}) above maximum ({hi}): {part}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        if step <= 0:
            raise CronError(f"step of range should be a positive number: {part}")
        values.update(range(start, end + 1, step))
    return frozenset(values), star


@dataclass(frozen=True)
class Schedule:
    """Either a fixed delay (@every) or field sets; `next_after` is strictly later, whole seconds."""

    every: float | None = None
    fields: tuple[frozenset[int], ...] = ()
    dom_star: bool = True
    dow_star: bool = True

    def next_after(self, t: datetime) -> datetime:
        if self.every is not None:
            return t.replace(microsecond=0) + timedelta(seconds=self.every)
        sec, minute, hour, dom, month, dow = self.fields
        start = t.replace(microsecond=0) + timedelta(seconds=1)
        day = start.replace(hour=0, minute=0, second=0)
        for _ in range(366 * 5):
            if day.month in month and self._day_matches(day, dom, dow):
                for h in sorted(hour):
                    for m in sorted(minute):
                        for s in sorted(sec):
                            candidate = day.replace(hour=h, minute=m, second=s)
                            if candidate >= start:
                                return candidate
            day += timedelta(days=1)
        raise CronError("schedule never fires")

    def _day_matches(self, day: datetime, dom: frozenset[int], dow: frozenset[int]) -> bool:
        d1, d2 = day.day in dom, (day.weekday() + 1) % 7 in dow
        return (d1 and d2) if (self.dom_star or self.dow_star) else (d1 or d2)


def parse(spec: str) -> Schedule:
    """Parse a job schedule; CronError with the Scheduler's message when it is invalid."""
    text = spec.strip()
    if text.startswith("@"):
        if text.startswith("@every "):
            raw = text[len("@every "):].strip()
            try:
                seconds = parse_duration(raw)
            except ValueError as exc:
                raise CronError(f"failed to parse duration {text}: {exc}") from None
            return Schedule(every=max(1.0, float(int(seconds))))
        if text.lower() not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {text}")
        text = _DESCRIPTORS[text.lower()]
    parts = text.split()
    if len(parts) != 6:
        raise CronError(f"expected exactly 6 fields, found {len(parts)}: [{' '.join(parts)}]")
    parsed = [_field(p, lo, hi, names) for p, (lo, hi, names) in zip(parts, _BOUNDS, strict=True)]
    dow_values, dow_star = parsed[5]
    if 7 in dow_values:  # robfig accepts 7 as Sunday
        dow_values = (dow_values - {7}) | {0}
    return Schedule(fields=(*tuple(v for v, _ in parsed[:5]), dow_values),
                    dom_star=parsed[3][1], dow_star=dow_star)
