"""The lag report: every consumer group's lag in messages and in time, Burrow's status and the catch-up ETA,
sampled over a window and drawn, so a person sees whether the lag is going up or down.

The numbers are the console's lag engine (console.model.lag) over the Kafka source's snapshots, exactly what
`todo-console lag` and the dashboard show; this module only samples, tabulates and plots them. Pass means
no group is in ERR (a partition STOPped, STALLed or REWOUND: Burrow's rule, as `lag` exits 1) and no group's
oldest unconsumed message is older than the limit the operator gave.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from console.model.lag import GroupLag, GroupStatus, LagHistory, evaluate
from console.model.wiring import Wiring
from console.output import format_duration
from console.runbooks.procedures import Outcome, ProcedureError
from console.sources.health import SourceError
from console.sources.kafka import KafkaSource
from console.target import Target


def open_kafka(target: Target) -> tuple[KafkaSource, Wiring]:
    """The target's Kafka and the wiring that says which groups consume which topics."""
    from console.sources.kafka import source_for
    from console.sources.wiring import rendered_wiring

    try:
        return source_for(target), rendered_wiring()
    except SourceError as exc:
        raise ProcedureError(str(exc)) from None


def sample(kafka: KafkaSource, wiring: Wiring, samples: int, interval_s: float) -> LagHistory:
    """`samples` snapshots of every group, `interval_s` apart."""
    history = LagHistory()
    topics_of = wiring.consumed_topics()
    for taken in range(samples):
        if taken:
            time.sleep(interval_s)
        history.add(kafka.lag_snapshot(topics_of=topics_of))
    return history


def report(history: LagHistory) -> list[GroupLag]:
    """The verdict on every group, worst first."""
    return evaluate(history)


def group_rows(groups: Sequence[GroupLag]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for g in groups:
        produced = sum(p.produce_rate or 0.0 for p in g.partitions)
        consumed = sum(p.consume_rate or 0.0 for p in g.partitions)
        worst = g.worst
        why = g.error or (f"{worst.tp}: {worst.reason}" if worst is not None and worst.status.value != "OK" else "")
        rows.append((g.group, g.status.value, g.total_lag, format_duration(g.max_time_lag_s),
                     format_duration(g.eta_s), f"{produced:.1f}", f"{consumed:.1f}", len(g.partitions), why))
    return rows


def errors_outcome(groups: Sequence[GroupLag]) -> Outcome:
    name = "no consumer group is in error"
    if not groups:
        return Outcome(name, False, "no consumer group found")
    bad = [g for g in groups if g.status is GroupStatus.ERR]
    if bad:
        return Outcome(name, False, "; ".join(
            f"{g.group}: " + (g.error or (f"{g.worst.tp} {g.worst.status.value}, {g.worst.reason}" if g.worst else ""))
            for g in bad))
    unknown = [g.group for g in groups if g.status is GroupStatus.UNKNOWN]
    return Outcome(name, True, f"{len(groups)} groups" +
                   (f" ({len(unknown)} without a verdict yet: {', '.join(unknown)})" if unknown else ""))


def time_lag_outcome(groups: Sequence[GroupLag], max_time_lag_s: float) -> Outcome:
    name = f"no group lags more than {format_duration(max_time_lag_s)}"
    late = [g for g in groups if (g.max_time_lag_s or 0.0) > max_time_lag_s]
    if late:
        return Outcome(name, False, "; ".join(f"{g.group}: oldest unconsumed message "
                                              f"{format_duration(g.max_time_lag_s)} old, {g.total_lag} messages"
                                              for g in late))
    worst = max((g.max_time_lag_s or 0.0 for g in groups), default=0.0)
    return Outcome(name, True, f"the largest is {format_duration(worst)}")


def figures(groups: Sequence[GroupLag], history: LagHistory) -> dict[str, tuple[float | int | None, str]]:
    times = [g.max_time_lag_s for g in groups if g.max_time_lag_s is not None]
    span = _span(history)
    return {"groups": (len(groups), ""), "total lag": (sum(g.total_lag for g in groups), "messages"),
            "largest time lag": (max(times) if times else None, "s"), "sampled over": (span, "s")}


def _span(history: LagHistory) -> float:
    stamps = [at for g in history.groups() for at, _lag, _t in history.group_series(g)]
    return max(stamps) - min(stamps) if stamps else 0.0


def plot(history: LagHistory, groups: Sequence[GroupLag]) -> Any:
    """Lag in messages and in time of every group over the sampled window, one line per group."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6))
    messages, seconds = fig.subplots(2, 1, sharex=True)
    stamps = [at for g in history.groups() for at, _lag, _t in history.group_series(g)]
    t0 = min(stamps) if stamps else 0.0
    for g in groups:
        series = history.group_series(g.group)
        xs = [at - t0 for at, _lag, _t in series]
        messages.plot(xs, [lag for _at, lag, _t in series], marker=".", label=f"{g.group} ({g.status.value})")
        seconds.plot(xs, [t if t is not None else float("nan") for _at, _lag, t in series], marker=".",
                     label=g.group)
    messages.set_ylabel("lag (messages)")
    seconds.set_ylabel("oldest unconsumed (s)")
    seconds.set_xlabel("seconds into the sampled window")
    messages.set_title("Consumer lag per group")
    if groups:
        messages.legend(loc="upper left", fontsize="small")
    for axis in (messages, seconds):
        axis.grid(True, alpha=0.3)
        axis.set_ylim(bottom=0)
    return fig
