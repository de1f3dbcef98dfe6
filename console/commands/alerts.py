"""`todo-console alerts`: the alerts Prometheus has firing or pending, with labels, annotations and since when.

Exit code 1 while anything fires (pending alerts are shown but are not yet a problem), so a cron job or a
CI gate can run `todo-console alerts --json` and act on the code alone.
"""

from __future__ import annotations

import argparse
import time

from console.cli import CliError
from console.model.alerts import Alert, AlertReport
from console.output import Exit, add_output_arguments, emit_json, table
from console.sources.health import SourceError
from console.target import add_target_arguments, resolve_target


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alerts", help="alerts firing or pending in Prometheus (exit 1 while one fires)",
        description="The platform's alert rules as Prometheus evaluates them now: every firing or pending "
        "alert with its labels, summary and since when. Exit code 1 while any alert fires.",
    )
    add_output_arguments(parser)
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from console.sources.prometheus import prometheus_source

    target = resolve_target(args)
    try:
        source = prometheus_source(target)
        report = source.alerts()
    except SourceError as exc:
        raise CliError(str(exc)) from exc
    code = Exit.PROBLEM if report.firing else Exit.OK
    if args.json:
        emit_json("alerts", {"prometheus": source.address, "rules": report.rules, "firing": len(report.firing),
                             "pending": len(report.pending), "rule_errors": report.rule_errors,
                             "alerts": [a.to_dict() for a in report.alerts]}, target=target.label)
        return code
    print(readable(report, now=time.time()))
    return code


def readable(report: AlertReport, *, now: float) -> str:
    lines = []
    if report.alerts:
        lines.append(table(["ALERT", "STATE", "SEVERITY", "SINCE", "SUMMARY"],
                           [[a.name, _state(a, now), a.severity, _ago(a.active_at, now), a.summary]
                            for a in report.alerts]))
    verdict = (f"{len(report.firing)} firing, {len(report.pending)} pending" if report.alerts
               else "nothing firing")
    lines.append(f"{verdict} ({report.rules} alert rules evaluated)")
    if report.rules == 0:
        lines.append("warning: Prometheus has no alert rules loaded, so no alert can fire")
    lines.extend(f"warning: rule {name} fails to evaluate: {error}" for name, error in report.rule_errors.items())
    return "\n".join(lines)


def _state(alert: Alert, now: float) -> str:
    """`pending (fires in 3m)` tells an operator how long is left before the rule's `for` runs out."""
    if alert.state != "pending" or not alert.active_at or not alert.for_s:
        return alert.state
    left = alert.active_at + alert.for_s - now
    return f"pending (fires in {_duration(max(left, 0))})"


def _ago(ts: float | None, now: float) -> str | None:
    return f"{_duration(max(now - ts, 0))} ago" if ts else None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
