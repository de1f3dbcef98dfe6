"""`todo-console events`: events published, consumed and failed per topic, from Prometheus, with a trend.

Exit code 1 while any topic has failures (a consumer dropping or retrying events is a problem found), 0
otherwise, 2 when Prometheus cannot be asked.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

from console.cli import CliError
from console.model.event_rates import EventsReport, ServiceRate, TopicRates
from console.output import Exit, add_output_arguments, emit_json, sparkline, table
from console.sources.health import SourceError
from console.target import add_target_arguments, resolve_target
from console.timeflags import duration_s

DEFAULT_RANGE = "15m"
SPARKLINE_POINTS = 30  # one character each in the table
MAX_POINTS = 1000
MAX_RANGE_S = 7 * 86400
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # Kafka's topic name rule


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "events", help="events published, consumed and failed per topic (Prometheus), with a trend",
        description="Event rates per topic from Prometheus: what the services published, what each consumer "
        "handled and what failed (by stage), daprd's own delivery counts where it exports them, and the "
        "backend's unpublished outbox rows. Exit code 1 while events are failing.",
    )
    parser.add_argument("--topic", "-t", help="one topic only")
    parser.add_argument("--range", dest="range_", default=DEFAULT_RANGE, metavar="RANGE",
                        help=f"how far back the trend goes (default {DEFAULT_RANGE})")
    parser.add_argument("--points", type=int, default=SPARKLINE_POINTS,
                        help=f"points of the trend (default {SPARKLINE_POINTS}, at most {MAX_POINTS})")
    parser.add_argument("--window", default="2m",
                        help="rate window, a Prometheus duration (default 2m: 4 scrapes at 30 s)")
    add_output_arguments(parser)
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from console.sources.prometheus import prometheus_source

    if args.topic and not _TOPIC_RE.match(args.topic):
        raise CliError(f"--topic {args.topic!r}: not a Kafka topic name")
    if not 2 <= args.points <= MAX_POINTS:
        raise CliError(f"--points must be between 2 and {MAX_POINTS}, got {args.points}")
    range_s = duration_s(args.range_, "--range")
    if range_s > MAX_RANGE_S:
        raise CliError(f"--range {args.range_}: at most 7d")
    target = resolve_target(args)
    try:
        source = prometheus_source(target, window=args.window)
        report = source.events(args.topic, range_s, points=args.points)
    except ValueError as exc:
        raise CliError(f"--window: {exc}") from exc
    except SourceError as exc:
        raise CliError(str(exc)) from exc
    code = Exit.PROBLEM if report.failing else Exit.OK
    if args.json:
        emit_json("events", {"prometheus": source.address, "window": report.window, "range_s": range_s,
                             "outbox_pending": report.outbox_pending,
                             "topics": [_topic_json(t, report) for t in report.topics]}, target=target.label)
        return code
    print(readable(report, args.range_))
    return code


def readable(report: EventsReport, range_text: str) -> str:
    if not report.topics:
        return (f"no event metrics yet (rates over {report.window}): nothing published or consumed since "
                "Prometheus started scraping")
    rows = []
    for rates in report.topics:
        history = report.history.get(rates.topic)
        trend = sparkline([v for _, v in history.published]) if history else None
        rows.append([rates.topic, _per_s(rates.published_per_s), _by_service(rates.consumed),
                     _failed(rates), _dapr(rates), trend])
    text = table(["TOPIC", "PUBLISHED/s", "CONSUMED/s", "FAILED/s", "DAPR IN/s", f"PUBLISHED ({range_text})"], rows)
    pending = ", ".join(f"{svc} {int(n)}" for svc, n in sorted(report.outbox_pending.items()))
    return text + f"\nrates over the last {report.window}" + (f"; outbox pending: {pending}" if pending else "")


def _topic_json(rates: TopicRates, report: EventsReport) -> dict[str, object]:
    history = report.history.get(rates.topic)
    return {**rates.to_dict(), "history": history.to_dict() if history else None}


def _per_s(value: float) -> str:
    return f"{value:.2f}"


def _by_service(rates: Sequence[ServiceRate]) -> str:
    return ", ".join(f"{r.service} {_per_s(r.per_s)}" for r in rates) or "0.00"


def _failed(rates: TopicRates) -> str:
    if not rates.failed_per_s:
        return "0.00"
    return ", ".join(f"{r.service}/{r.stage} {_per_s(r.per_s)}" for r in rates.failed if r.per_s)


def _dapr(rates: TopicRates) -> str | None:
    delivered = [r for r in rates.dapr if r.direction == "in" and r.per_s]
    return ", ".join(f"{r.app_id} {r.status} {_per_s(r.per_s)}" for r in delivered) or None
