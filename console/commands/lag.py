"""`todo-console lag`: consumer lag in messages and in time, Burrow's verdict, the catch-up ETA, and what KEDA
would do, per consumer group.

A verdict needs a window of samples, so the command samples `--samples` times, `--interval` apart (4 x 2 s
by default: a verdict needs 3 samples over at least `--min-window` 5 s), or keeps sampling with `--watch`. Exit code: 1 when a group is in ERR (a partition STOPped,
STALLed or REWOUND, Burrow's rule), 0 otherwise (WARN is a slow consumer, not yet a problem; UNKNOWN means
too few samples); 2 when Kafka cannot be reached.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from typing import Any

from console.cli import CliError
from console.commands._kafka import kafka_for, source_errors
from console.live import connect
from console.model.keda import ScalingDecision, decision_for_group
from console.model.lag import (
    MIN_SAMPLES,
    MIN_SPAN_S,
    WINDOW,
    EvalConfig,
    GroupLag,
    GroupStatus,
    LagHistory,
    PartitionLag,
    evaluate,
)
from console.model.wiring import Wiring
from console.output import Exit, add_output_arguments, emit_json, format_duration, table
from console.sources.health import SourceError
from console.sources.kafka import KafkaSource
from console.target import add_target_arguments, resolve_target

SPARK = "▁▂▃▄▅▆▇█"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lag", help="consumer lag in messages and time, Burrow status, ETA, and what KEDA would do",
        description=__doc__)
    parser.add_argument("group", nargs="?", help="one consumer group (default: every group, and every app "
                                                 "a Subscription names)")
    parser.add_argument("--topic", action="append", help="only this topic (repeatable)")
    parser.add_argument("--samples", type=int, default=4, help="samples to take before judging (default 4)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between samples (default 2)")
    parser.add_argument("--min-window", type=float, default=MIN_SPAN_S,
                        help=f"seconds the samples must span for a verdict (default {MIN_SPAN_S:g})")
    parser.add_argument("--watch", action="store_true", help="keep sampling and reprinting until interrupted")
    parser.add_argument("--window", type=int, default=WINDOW, help=f"samples a verdict looks at (default {WINDOW})")
    parser.add_argument("--allowed-lag", type=int, default=0, help="lag still counted as caught up (default 0)")
    parser.add_argument("--partitions", action="store_true", help="a row per partition too (always with GROUP)")
    add_target_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.samples < 1 or args.interval <= 0 or args.window < 2 or args.allowed_lag < 0 or args.min_window < 0:
        raise CliError("--samples must be at least 1, --interval above 0, --window at least 2, "
                       "--allowed-lag and --min-window not negative")
    config = EvalConfig(window=args.window, min_samples=min(MIN_SAMPLES, args.window), min_span_s=args.min_window,
                        allowed_lag=args.allowed_lag)
    target = resolve_target(args)
    try:
        wiring = connect.read_wiring(target)
    except SourceError as exc:  # lag is Kafka's to tell; without the wiring it lacks KEDA and silent groups
        print(f"note: {exc}: no KEDA decisions, and only the groups the brokers know", file=sys.stderr)
        wiring = Wiring((), ())
    kafka = kafka_for(target)
    try:
        with source_errors():
            return _sample(args, kafka, wiring, config, target.label)
    finally:
        kafka.close()


def _sample(args: argparse.Namespace, kafka: KafkaSource, wiring: Wiring, config: EvalConfig, label: str) -> int:
    topics_of = wiring.consumed_topics()
    groups = None
    if args.group:
        known = set(kafka.list_groups()) | set(topics_of)
        if args.group not in known:
            raise CliError(f"no consumer group {args.group} (known: {', '.join(sorted(known)) or 'none'})")
        groups = [args.group]
    history = LagHistory()
    code = Exit.OK
    for taken in itertools.count(1):
        history.add(kafka.lag_snapshot(groups, topics_of=topics_of, only_topics=args.topic))
        if args.watch or taken >= args.samples:
            report = evaluate(history, config=config)
            keda = {g.group: decision_for_group(wiring, history, g.group) for g in report}
            code = Exit.PROBLEM if any(g.status is GroupStatus.ERR for g in report) else Exit.OK
            _print(args, report, keda, history, label, taken, clear=args.watch and taken > 1)
            if not args.watch:
                break
        time.sleep(args.interval)
    return int(code)


def _print(args: argparse.Namespace, report: list[GroupLag], keda: dict[str, ScalingDecision | None],
           history: LagHistory, label: str, samples: int, clear: bool) -> None:
    if args.json:
        emit_json("lag", {"samples": samples, "interval_s": args.interval, "window": args.window,
                          "groups": [group_json(g, keda.get(g.group), history) for g in report]}, target=label)
        sys.stdout.flush()
        return
    if clear and sys.stdout.isatty():
        sys.stdout.write("\033[2J\033[H")
    print(table(["GROUP", "STATUS", "LAG", "TIME LAG", "ETA", "IN/S", "OUT/S", "TREND", "PARTITIONS", "KEDA", "WHY"],
                [_group_row(g, keda.get(g.group), history) for g in report]))
    if args.partitions or args.group:
        print()
        print(table(["GROUP", "PARTITION", "COMMITTED", "END", "LAG", "TIME LAG", "FROM", "ETA", "STATUS", "WHY"],
                    [_partition_row(p) for g in report for p in g.partitions]))
    sys.stdout.flush()


def _group_row(g: GroupLag, keda: ScalingDecision | None, history: LagHistory) -> list[object]:
    worst = g.worst
    rates = [(p.produce_rate or 0.0, p.consume_rate or 0.0) for p in g.partitions]
    trend = _spark([total for _at, total, _t in history.group_series(g.group)][-20:])
    counts: dict[str, int] = {}
    for p in g.partitions:
        counts[p.status.value] = counts.get(p.status.value, 0) + 1
    return [g.group, g.status.value, g.total_lag, format_duration(g.max_time_lag_s), format_duration(g.eta_s),
            f"{sum(r[0] for r in rates):.1f}", f"{sum(r[1] for r in rates):.1f}", trend,
            " ".join(f"{n} {s}" for s, n in sorted(counts.items())), _keda_cell(keda),
            g.error or (f"{worst.tp}: {worst.reason}" if worst and worst.status.value != "OK" else "")]


def _partition_row(p: PartitionLag) -> list[object]:
    return [p.group, str(p.tp), p.committed, p.end, p.lag, format_duration(p.time_lag.seconds), p.time_lag.method,
            format_duration(p.eta_s) if p.eta_s is not None else p.eta_reason, p.status.value, p.reason]


def _keda_cell(d: ScalingDecision | None) -> str:
    if d is None:
        return "-"
    metrics = ", ".join(f"{t.metric}/{t.trigger.lag_threshold}" for t in d.triggers)
    state = "active" if d.active else "inactive"
    return f"{d.desired} replica{'s' if d.desired != 1 else ''} ({state}, lag {metrics})"


def _spark(values: list[int]) -> str:
    if len(values) < 2:
        return ""
    top = max(values)
    if top == 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, v * (len(SPARK) - 1) // top)] for v in values)


def group_json(g: GroupLag, keda: ScalingDecision | None, history: LagHistory) -> dict[str, Any]:
    """The `lag` document's group object (console/README.md documents it)."""
    return {
        "group": g.group, "status": g.status.value, "state": g.state, "members": g.members, "error": g.error,
        "total_lag": g.total_lag, "max_time_lag_s": _round(g.max_time_lag_s), "eta_s": _round(g.eta_s),
        "complete": round(g.complete, 2),
        "history": [{"at": round(at, 3), "lag": lag, "time_lag_s": _round(t)} for at, lag, t in
                    history.group_series(g.group)],
        "partitions": [partition_json(p, history) for p in g.partitions],
        "keda": keda_json(keda),
    }


def partition_json(p: PartitionLag, history: LagHistory) -> dict[str, Any]:
    return {
        "topic": p.tp.topic, "partition": p.tp.partition, "committed": p.committed, "start": p.start,
        "end": p.end, "lag": p.lag, "time_lag_s": _round(p.time_lag.seconds), "time_lag_from": p.time_lag.method,
        "status": p.status.value, "reason": p.reason, "consume_rate": _round(p.consume_rate),
        "produce_rate": _round(p.produce_rate), "eta_s": _round(p.eta_s), "eta_reason": p.eta_reason,
        "trend": p.trend, "samples": p.samples, "complete": round(p.complete, 2),
        "history": [{"at": round(s.at, 3), "committed": s.committed, "end": s.end, "lag": s.lag,
                     "time_lag_s": _round(s.time_lag.seconds)} for s in history.samples(p.group, p.tp)],
    }


def keda_json(d: ScalingDecision | None) -> dict[str, Any] | None:
    if d is None:
        return None
    so = d.scaled_object
    return {
        "scaled_object": so.name, "target": so.target, "min_replicas": so.min_replicas,
        "max_replicas": so.max_replicas, "active": d.active, "desired_replicas": d.desired, "reason": d.reason,
        "triggers": [{"metric_name": t.metric_name, "topic": t.trigger.topic, "metric": t.metric, "lag": t.lag,
                      "lag_threshold": t.trigger.lag_threshold,
                      "activation_lag_threshold": t.trigger.activation_lag_threshold, "active": t.active,
                      "partitions": t.partitions, "partitions_with_lag": t.partitions_with_lag,
                      "capped_at_replicas": t.cap, "replicas": t.replicas} for t in d.triggers],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
