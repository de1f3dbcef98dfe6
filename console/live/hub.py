"""The live data layer: one object per target that owns its sources and keeps what each last said.

k9s's shape, in Python: the I/O happens in `refresh_<area>()`, one per area, each meant to run in a worker
thread of its own (the dashboard runs one exclusive worker per area; `status` runs them side by side
once). A refresh never overlaps with itself: a second call while one runs returns "busy" at once. A
refresh that fails records why in its area's `SlotView` and keeps the last good value (shown as stale);
the other areas never notice. Everything else (`snapshot()`, `findings()`, `overview()`,
`lag_samples()`) reads memory only, so a screen can call it on every frame.

Areas and their sources (console/README.md, "The live data layer"):
  workloads     rollouts, pods, platform resources: the Kubernetes caches, or the sandbox's supervisor state
  wiring        Subscriptions and ScaledObjects (console.live.connect): refreshed by whoever needs it
  lag           consumer lag, its history (LagHistory), Burrow's verdict and KEDA's decision: Kafka
  dead_letters  the dead-letter topics' summaries: Kafka, with failure reasons from the logs
  alerts        alerts firing and pending: Prometheus
  events        event rates per topic and their history (RateHistory): Prometheus
  logs          the newest lines for the current log query: Loki, or the sandbox's log files
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from console.live import connect
from console.live.slots import Slot, SlotView
from console.model.alerts import AlertReport
from console.model.dlq import DlqSummary
from console.model.event_rates import EventsReport, RateHistory
from console.model.findings import Finding
from console.model.kafka import LagSnapshot, TopicPartition
from console.model.keda import ScalingDecision, decision_for_group
from console.model.lag import HISTORY, EvalConfig, GroupLag, LagHistory, Sample, evaluate
from console.model.logs import LogLine, LogQuery, LogSource
from console.model.platform import PlatformReport
from console.model.pods import PodSummary
from console.model.rollout import RolloutStatus
from console.model.wiring import Wiring
from console.sources.health import SourceAbsent, SourceError
from console.sources.workloads import Workloads, open_workloads
from console.target import ClusterTarget, Target

if TYPE_CHECKING:
    from console.live.overview import Overview
    from console.sources.dead_letters import DeadLetters
    from console.sources.kafka import KafkaSource
    from console.sources.prometheus import PrometheusSource

log = logging.getLogger(__name__)

T = TypeVar("T")
Outcome = Literal["ok", "failed", "absent", "busy"]
AREAS = ("workloads", "wiring", "lag", "dead_letters", "alerts", "events", "logs")
CORE_CACHES = ("deployments", "pods", "events")  # a workloads refresh is stale when one of these is


@dataclass(frozen=True)
class HubConfig:
    """How much the hub keeps and how it judges. `make_hub` sizes the histories for its refresh period."""

    lag: EvalConfig = field(default_factory=EvalConfig)
    lag_history: int = HISTORY  # samples kept per partition
    event_window: str = "2m"  # the rate() window
    event_range_s: float = 900.0  # the event-rate history's span
    event_points: int = 60
    log_query: LogQuery = field(default_factory=lambda: LogQuery(limit=200))
    log_window_s: float = 900.0  # a log query without `since` looks this far back


@dataclass(frozen=True)
class WorkloadsView:
    rollouts: tuple[RolloutStatus, ...]
    pods: tuple[PodSummary, ...]
    platform: PlatformReport


@dataclass(frozen=True)
class LagView:
    """The verdict of the latest lag refresh: groups worst first, what KEDA would do for each (None: no
    ScaledObject), each group's sparkline series (at, total lag, largest time lag), samples taken so far."""

    at: float
    groups: tuple[GroupLag, ...]
    keda: Mapping[str, ScalingDecision | None]
    series: Mapping[str, tuple[tuple[float, int, float | None], ...]]
    samples: int


@dataclass(frozen=True)
class LogsView:
    """The newest lines and the query they answer: a screen shows them only while that query is still the one
    asked for, so the previous query's lines never pass for the new one's between a change and its refresh."""

    query: LogQuery
    lines: tuple[LogLine, ...]


@dataclass(frozen=True)
class Snapshot:
    """Every area's view at one moment: what the rules judge and the screens draw."""

    target: str
    sandbox: bool
    at: float
    workloads: SlotView[WorkloadsView]
    wiring: SlotView[Wiring]
    lag: SlotView[LagView]
    dead_letters: SlotView[tuple[DlqSummary, ...]]
    alerts: SlotView[AlertReport]
    events: SlotView[EventsReport]
    logs: SlotView[LogsView]

    def areas(self) -> tuple[SlotView[Any], ...]:
        return (self.workloads, self.wiring, self.lag, self.dead_letters, self.alerts, self.events, self.logs)


class Hub:
    """The sources of one target and what they last said. Build it with `make_hub`."""

    def __init__(self, target: Target, config: HubConfig | None = None) -> None:
        self.target = target
        self.config = config or HubConfig()
        self.log_query = self.config.log_query
        cluster = isinstance(target, ClusterTarget)
        where = target.label
        self._slots: dict[str, Slot[Any]] = {
            "workloads": Slot("workloads", "Kubernetes API" if cluster else "sandbox", where),
            "wiring": Slot("wiring", "Kubernetes API" if cluster else "kustomize", where),
            "lag": Slot("lag", "kafka", where),
            "dead_letters": Slot("dead_letters", "kafka", where),
            "alerts": Slot("alerts", "prometheus", where),
            "events": Slot("events", "prometheus", where),
            "logs": Slot("logs", "loki" if cluster else "sandbox logs", where),
        }
        self._opening = threading.Lock()  # sources shared between areas are opened once
        self._wiring_lock = threading.Lock()
        self._workloads: Workloads | None = None
        self._kafka: dict[str, KafkaSource] = {}  # one per area: a KafkaSource serves one thread at a time
        self._prometheus: dict[str, PrometheusSource] = {}
        self._logs: LogSource | None = None
        self._history = LagHistory(self.config.lag_history, reset_policy=self.config.lag.reset_policy)
        self._history_lock = threading.Lock()
        self._lag_samples = 0
        self._rates = RateHistory(self.config.event_range_s, self.config.event_points)
        self._judged: tuple[tuple[SlotView[Any], ...], int, tuple[Finding, ...]] | None = None  # findings()'s

    # --- refreshes: the I/O, one worker each ------------------------------------------------------------

    def refresh_workloads(self) -> Outcome:
        """Rollouts, pods and platform resources (on a cluster, from the watch caches; the first call waits for
        them to list). Stale while a core cache (Deployments, Pods, Events) cannot reach the API server."""
        return self._refresh("workloads", self._read_workloads)

    def refresh_lag(self) -> Outcome:
        """One lag sample into the history, then the verdict on every group and KEDA's decision."""
        return self._refresh("lag", self._read_lag)

    def refresh_dead_letters(self) -> Outcome:
        return self._refresh("dead_letters", self._read_dead_letters)

    def refresh_alerts(self) -> Outcome:
        return self._refresh("alerts", lambda: self._with_prometheus("alerts", lambda p: p.alerts()))

    def refresh_events(self) -> Outcome:
        """Event rates now (instant queries) into the rate history, seeded from Prometheus's own on the first."""
        return self._refresh("events", lambda: self._with_prometheus("events", self._read_events))

    def refresh_logs(self) -> Outcome:
        """The newest lines for `log_query` (set it with `set_log_query`)."""
        return self._refresh("logs", self._read_logs)

    def refresh_wiring(self) -> Outcome:
        """The wiring (lag and dead letters refresh it themselves; this is for a screen that shows it)."""
        return self._refresh("wiring", lambda: (self._wiring(), self._slots["wiring"].view.address))

    # --- reads: memory only ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        s = self._slots
        return Snapshot(self.target.label, not isinstance(self.target, ClusterTarget), time.time(),
                        s["workloads"].view, s["wiring"].view, s["lag"].view, s["dead_letters"].view,
                        s["alerts"].view, s["events"].view, s["logs"].view)

    def view(self, area: str) -> SlotView[Any]:
        return self._slots[area].view

    def findings(self, now: float | None = None) -> list[Finding]:
        """Everything wrong, worst first (console.live.findings). Judged once per second of `now` while no area
        has changed: a dashboard screen asks on every redraw (its verdict, the Overview's findings), up to six
        times per refresh period, and the rules over 1,000 pods and 300 partitions are not free."""
        from console.live.findings import judge

        snapshot = self.snapshot()
        now = snapshot.at if now is None else now
        views, second = snapshot.areas(), int(now)
        judged = self._judged
        if judged is not None and judged[1] == second and all(a is b for a, b in zip(judged[0], views, strict=True)):
            return list(judged[2])
        found = judge(snapshot, now)
        self._judged = (views, second, tuple(found))
        return found

    def overview(self, now: float | None = None) -> Overview:
        """The 3 a.m. summary `status` prints and the Overview screen draws (console.live.overview)."""
        from console.live.overview import overview

        snapshot = self.snapshot()
        now = snapshot.at if now is None else now
        return overview(snapshot, now, findings=self.findings(now))

    def lag_samples(self, group: str, tp: TopicPartition) -> tuple[Sample, ...]:
        """One partition's samples, oldest first: the drill-down's sparklines."""
        with self._history_lock:
            return tuple(self._history.samples(group, tp))

    def set_log_query(self, query: LogQuery) -> None:
        self.log_query = query

    # --- replays: recorded state in, without I/O -------------------------------------------------------------

    def replay_lag(self, snapshot: LagSnapshot, wiring: Wiring | None = None) -> None:
        """Judge a recorded lag snapshot as a refresh would have (history, Burrow's verdict, KEDA's decision):
        the dashboard's snapshot tests and benchmarks draw the lag screens from recorded offsets this way."""
        self._slots["lag"].succeeded(self._judge_lag(snapshot, wiring), at=snapshot.at)

    def replay(self, area: str, value: Any, *, at: float, address: str | None = None) -> None:
        """Put a recorded value in an area as if a refresh at `at` had read it (recorded states, no I/O)."""
        self._slots[area].succeeded(value, address=address, at=at)

    # --- actions: I/O, from a worker --------------------------------------------------------------------

    def workloads(self) -> Workloads:
        """The workloads source for actions (restart, undo, history, describe a pod): they send fresh requests
        or read the caches, and never disturb a refresh."""
        return self._workloads_source()

    def with_dead_letters(self, action: Callable[[DeadLetters], T]) -> T:
        """Run `action` (browse, plan or carry out a redrive or purge) on this target's dead letters, between
        two refreshes of them: their Kafka connection serves one thread at a time."""
        with self._slots["dead_letters"].refreshing:
            return action(connect.dead_letters(self._kafka_for("dead_letters"), self._wiring(), self._log_source()))

    def logs(self) -> LogSource:
        """The log store, for a live tail (`follow`) in a worker of its own."""
        return self._log_source()

    def close(self) -> None:
        with self._opening:
            kafkas, self._kafka = list(self._kafka.values()), {}
            proms, self._prometheus = list(self._prometheus.values()), {}
            workloads, self._workloads = self._workloads, None
        closers: list[Callable[[], None]] = [s.close for s in kafkas] + [s.close for s in proms]
        if workloads is not None:
            closers.append(workloads.close)
        for close in closers:
            try:
                close()
            except Exception as exc:  # closing must finish whatever one client thinks of its connection
                log.debug("closing a source: %r", exc)

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the refresh machinery ---------------------------------------------------------------------------

    def _refresh(self, area: str, read: Callable[[], tuple[Any, str]]) -> Outcome:
        slot = self._slots[area]
        if not slot.refreshing.acquire(blocking=False):
            return "busy"
        try:
            try:
                value, address = read()
            except SourceAbsent as exc:
                slot.failed(exc)
                return "absent"
            except SourceError as exc:
                slot.failed(exc)
                return "failed"
            except Exception as exc:  # a bug in one area must not stop the others (nor print a traceback)
                log.error("refreshing %s failed: %r", area, exc)
                log.debug("refresh failure", exc_info=True)
                slot.failed(SourceError(slot.view.source, slot.view.address, f"unexpected error: {exc!r}"))
                return "failed"
            slot.succeeded(value, address=address)
            return "ok"
        finally:
            slot.refreshing.release()

    def _workloads_source(self) -> Workloads:
        with self._opening:
            if self._workloads is None:
                self._workloads = open_workloads(self.target)
            return self._workloads

    def _read_workloads(self) -> tuple[WorkloadsView, str]:
        source = self._workloads_source()
        view = WorkloadsView(tuple(source.rollouts()), tuple(source.pods()), source.resources())
        if isinstance(self.target, ClusterTarget):
            _raise_stale_caches(source)
            self._wiring()  # the Subscriptions and ScaledObjects came with the caches: keep the wiring current
        return view, source.address

    def _wiring(self) -> Wiring:
        """The wiring now (the caches on a cluster, a cached render on the sandbox), else the last known one."""
        slot = self._slots["wiring"]
        with self._wiring_lock:
            try:
                cluster = isinstance(self.target, ClusterTarget)
                source = self._workloads_source() if cluster else None
                wiring = connect.read_wiring(self.target, source)
            except SourceError as exc:
                slot.failed(exc)
                if slot.view.value is None:
                    raise
                return slot.view.value
            slot.succeeded(wiring, address=source.address if source else "kustomize/overlays/prod")
            return wiring

    def _kafka_for(self, area: str) -> KafkaSource:
        with self._opening:
            if area not in self._kafka:
                self._kafka[area] = connect.open_kafka(self.target)
            return self._kafka[area]

    def _drop_kafka(self, area: str) -> None:
        """After a failure, open the source afresh next time: the sandbox's broker may have moved to a new port
        with a new `up`, and a cluster's client starts clean."""
        with self._opening:
            source = self._kafka.pop(area, None)
        if source is not None:
            try:
                source.close()
            except Exception as exc:  # the connection is broken already; closing it is a courtesy
                log.debug("closing the kafka source: %r", exc)

    def _read_lag(self) -> tuple[LagView, str]:
        try:
            wiring: Wiring | None = self._wiring()
        except SourceError:
            wiring = None  # lag is still read for every group the brokers list; KEDA's decisions wait for it
        kafka = self._kafka_for("lag")
        try:
            snapshot = kafka.lag_snapshot(topics_of=wiring.consumed_topics() if wiring else None)
        except SourceError:
            self._drop_kafka("lag")
            raise
        return self._judge_lag(snapshot, wiring), kafka.bootstrap

    def _judge_lag(self, snapshot: LagSnapshot, wiring: Wiring | None) -> LagView:
        """Add one sample to the history and judge every group on it: what a refresh and a replay share."""
        with self._history_lock:
            self._history.add(snapshot)
            self._lag_samples += 1
            groups = tuple(evaluate(self._history, config=self.config.lag))
            keda = {g.group: decision_for_group(wiring, self._history, g.group) if wiring else None for g in groups}
            series = {g.group: tuple(self._history.group_series(g.group)) for g in groups}
        return LagView(snapshot.at, groups, keda, series, self._lag_samples)

    def _read_dead_letters(self) -> tuple[tuple[DlqSummary, ...], str]:
        wiring = self._wiring()  # without it the dead-letter topics are unknown: the refresh fails with its reason
        kafka = self._kafka_for("dead_letters")
        try:
            return tuple(connect.dead_letters(kafka, wiring, None).summaries()), kafka.bootstrap
        except SourceError:
            self._drop_kafka("dead_letters")
            raise

    def _with_prometheus(self, area: str, read: Callable[[PrometheusSource], T]) -> tuple[T, str]:
        with self._opening:
            if area not in self._prometheus:
                from console.sources.prometheus import prometheus_source

                self._prometheus[area] = prometheus_source(self.target, window=self.config.event_window)
            source = self._prometheus[area]
        return read(source), source.address

    def _read_events(self, prometheus: PrometheusSource) -> EventsReport:
        if not self._rates.seeded:
            self._rates.seed(prometheus.event_history(self.config.event_range_s, points=self.config.event_points))
        topics = prometheus.event_rates()
        outbox = prometheus.outbox_pending()
        at = time.time()
        self._rates.add(at, topics)
        return EventsReport(prometheus.window, tuple(topics), self._rates.series(at), outbox)

    def _log_source(self) -> LogSource:
        with self._opening:
            if self._logs is None:
                self._logs = connect.open_logs(self.target)
            return self._logs

    def _read_logs(self) -> tuple[LogsView, str]:
        asked = self.log_query
        query = asked if asked.since is not None else replace(asked, since=time.time() - self.config.log_window_s)
        logs = self._log_source()
        return LogsView(asked, tuple(logs.query(query))), logs.address


def _raise_stale_caches(source: Workloads) -> None:
    """A cluster's caches keep answering from memory when the API server goes away; say so (the first core
    cache that cannot watch) so the area shows as stale rather than as fresh."""
    from console.sources.kube import KubeSource

    health = source.health() if isinstance(source, KubeSource) else {}
    for name in CORE_CACHES:
        h = health.get(name)
        if h is not None and h.error:
            prefix = f"{h.source} at {h.address}: "
            raise SourceError(h.source, h.address, h.error.removeprefix(prefix))


def make_hub(target: Target, *, refresh_s: float = 2.0, config: HubConfig | None = None) -> Hub:
    """The hub for `target`, its lag history sized for a refresh every `refresh_s`: five minutes of samples
    (the sparklines), and never fewer than Burrow's window."""
    if refresh_s <= 0:
        raise ValueError(f"refresh period must be positive, not {refresh_s:g}")
    config = config or HubConfig()
    capacity = max(config.lag.window, round(300 / refresh_s))
    return Hub(target, replace(config, lag_history=capacity))


def refresh_all(hub: Hub, areas: Sequence[str], *, lag_samples: int = 1, lag_interval_s: float = 2.0
                ) -> dict[str, Outcome]:
    """Refresh `areas` side by side, each in a thread of its own, and wait for all: what `status` does once,
    and a dashboard's first paint. Lag is sampled `lag_samples` times `lag_interval_s` apart (a verdict needs
    a window of samples); a failed sample ends the sampling."""
    outcomes: dict[str, Outcome] = {}

    def run(area: str) -> None:
        refresh: Callable[[], Outcome] = getattr(hub, f"refresh_{area}")
        outcome = refresh()
        for _ in range(lag_samples - 1 if area == "lag" else 0):
            if outcome != "ok":
                break
            time.sleep(lag_interval_s)
            outcome = refresh()
        outcomes[area] = outcome

    threads = [threading.Thread(target=run, args=(area,), name=f"refresh-{area}", daemon=True) for area in areas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
