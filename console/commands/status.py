"""`todo-console status`: is anything wrong, where, since when, and what to do next.

Reads every area at once through the live data layer (console.live): services (ready/desired, restarts,
version), rollouts in progress, the platform (Kafka, Dapr, KEDA, certificates), dead letters, the worst
lag (a few samples `--interval` apart: a verdict needs a window), alerts firing, and whether each source
answered; then every finding, worst first, with the command to run next.

Exit code: 0 healthy; 1 any warning or error (a source that cannot be read is one: an operator is blind
there); 2 when the target itself cannot be reached (the Kubernetes API, or a sandbox that is not running),
or bad input.
"""

from __future__ import annotations

import argparse
import time

from console.cli import CliError
from console.live.hub import HubConfig, make_hub, refresh_all
from console.live.overview import Overview
from console.live.slots import SlotView
from console.model.findings import Finding, Severity
from console.model.lag import MIN_SAMPLES, MIN_SPAN_S
from console.model.logs import LogQuery
from console.output import Exit, add_output_arguments, emit_json, format_duration, table
from console.target import add_target_arguments, resolve_target

AREAS = ("workloads", "lag", "dead_letters", "alerts", "logs")
DEFAULT_INTERVAL_S = MIN_SPAN_S / (MIN_SAMPLES - 1)  # the shortest sampling that still gives a lag verdict


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="is anything wrong, where, since when, and what to do (exit 1 when so)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=MIN_SAMPLES,
                        help=f"lag samples to take (default {MIN_SAMPLES}, the fewest that give a verdict; "
                             "1: no verdict, but no waiting)")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S,
                        help=f"seconds between lag samples (default {DEFAULT_INTERVAL_S:g})")
    add_target_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.samples < 1 or args.interval <= 0:
        raise CliError("--samples must be at least 1 and --interval above 0")
    target = resolve_target(args)
    # The log store is asked for one line: status needs to know it answers, not what it holds.
    hub = make_hub(target, refresh_s=args.interval, config=HubConfig(log_query=LogQuery(limit=1)))
    try:
        refresh_all(hub, AREAS, lag_samples=args.samples, lag_interval_s=args.interval)
        snapshot = hub.snapshot()
        if snapshot.workloads.value is None:  # the target itself: nothing else can be trusted to mean anything
            raise CliError(snapshot.workloads.error or "the target did not answer")
        summary = hub.overview()
    finally:
        hub.close()
    if args.json:
        emit_json("status", summary.to_dict(), target=target.label)
    else:
        print(readable(summary))
    return int(Exit.PROBLEM if summary.problem else Exit.OK)


def readable(o: Overview) -> str:
    """The sections, then the findings with their next command: what an operator reads top to bottom."""
    now = o.at
    errors = sum(1 for f in o.findings if f.severity is Severity.ERROR)
    warnings = sum(1 for f in o.findings if f.severity is Severity.WARN)
    verdict = (f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
               if o.problem else "healthy")
    out = [f"{o.target}: {verdict}", ""]
    if o.services is not None:
        out.append(table(["SERVICE", "STATE", "READY", "AVAILABLE", "RESTARTS", "VERSION"],
                         [[s.name, s.state, f"{s.ready}/{s.desired}", s.available, s.restarts, s.version]
                          for s in o.services]) if o.services else "no services")
        out.append("")
    if o.rollouts:
        out.append(table(["ROLLOUT", "STATE", "UPDATED", "READY", "REVISION", "MESSAGE"],
                         [[r.name, r.state.value, f"{r.updated}/{r.desired}", f"{r.ready}/{r.desired}", r.revision,
                           r.message] for r in o.rollouts]))
        out.append("")
    if o.platform:
        out.append(table(["PLATFORM", "OK", "SUMMARY"],
                         [[p.area, {True: "yes", False: "no", None: "?"}[p.ok], p.summary] for p in o.platform]))
        out.append("")
    out.append(table(["AREA", "NOW"], [["dead letters", _dead_letters(o, now)], ["worst lag", _lag(o)],
                                       ["alerts", _alerts(o)]]))
    out.append("")
    out.append(table(["SOURCE", "FOR", "STATE", "ADDRESS", "DETAIL"],
                     [[v.source, v.name.replace("_", " "), v.state, v.address, _source_detail(v, now)]
                      for v in o.sources]))
    if o.findings:
        out.append("")
        out.extend(_finding(f, now) for f in o.findings)
    return "\n".join(out)


def _dead_letters(o: Overview, now: float) -> str:
    d = o.dead_letters
    if d is None:
        return "unknown (Kafka could not be read)"
    if not d.waiting:
        return f"none waiting ({d.pending} pending in {d.dlqs} DLQs)"
    where = ", ".join(f"{topic} {n}" for topic, n in d.waiting_by_dlq)
    oldest = f", the oldest for {format_duration(now - d.oldest_waiting_at)}" if d.oldest_waiting_at else ""
    return f"{d.waiting} waiting ({where}){oldest}; {d.pending} pending in {d.dlqs} DLQs"


def _lag(o: Overview) -> str:
    lag = o.lag
    if lag is None:
        return "unknown (Kafka could not be read)"
    counts = f"{lag.groups} groups: {lag.err} ERR, {lag.warn} WARN; {lag.samples} sample{'s' if lag.samples != 1 else ''}"
    if lag.group is None:
        return f"every group caught up ({counts})"
    eta = format_duration(lag.eta_s) if lag.eta_s is not None else f"- ({lag.eta_reason or 'unknown'})"
    keda = f"; KEDA: {lag.keda}" if lag.keda else ""
    return (f"{lag.group} {lag.status}: {lag.lag} messages, {format_duration(lag.time_lag_s)} behind "
            f"({lag.time_lag_from}), ETA {eta}{keda} ({counts})")


def _alerts(o: Overview) -> str:
    a = o.alerts
    if a is None:
        return "unknown (Prometheus could not be read)"
    firing = ", ".join(f"{x.name} ({x.severity or '-'})" for x in a.firing)
    return (f"{len(a.firing)} firing: {firing}" if a.firing else "nothing firing") + (
        f"; {len(a.pending)} pending" if a.pending else "") + f" ({a.rules} rules)"


def _source_detail(v: SlotView[object], now: float) -> str | None:
    if v.state == "ok":
        return None
    kept = f" (data from {format_duration(now - v.updated_at)} ago)" if v.updated_at is not None else ""
    return f"{v.reason}{kept}"


def _finding(f: Finding, now: float) -> str:
    since = ""
    if f.since is not None:  # a cluster's clock ahead of ours gives a time with no "ago"
        since = f" since {time.strftime('%H:%M:%S', time.localtime(f.since))}" + (
            f" ({format_duration(now - f.since)} ago)" if f.since <= now else "")
    lines = [f"{f.severity.label.upper():5}  {f.area}/{f.subject}{since}: {f.message}"]
    if f.hint:
        lines.append(f"       next: {f.hint}")
    return "\n".join(lines)
