"""Prometheus: alerts firing and event rates per topic. The only module importing prometheus-api-client.

Queries go through `PrometheusConnect.custom_query` / `custom_query_range`; the rules and alerts API
(`/api/v1/rules`), which the library does not wrap, goes through the same `requests.Session` the library
was given. Every PromQL the console sends is in `PROMQL` below, with what it measures.

Labels: in the cluster the ServiceMonitor gives each target `namespace`, `pod`, `service` (the Kubernetes
Service, named after the app) and `job`; the services' own `service` label then becomes `exported_service`
with the same value. The sandbox's Prometheus labels its targets the same way (console/sandbox/monitoring.py),
so `by (service)` means the same app in both.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from string import Template
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from console.model.alerts import Alert, AlertReport, by_urgency
from console.model.event_rates import DaprRate, EventsReport, ServiceRate, TopicHistory, TopicRates, on_grid
from console.sources.health import SourceAbsent, SourceError, network_reason
from console.target import ClusterTarget, Target

SOURCE = "prometheus"
DEFAULT_WINDOW = "2m"  # >= 4 scrapes at the cluster's 30 s interval: rate() needs two samples, better four
HISTORY_POINTS = 60


def _rate(metric: str) -> str:
    """Per-second rate of a counter over the window, counting the increments `rate()` alone misses.

    `rate()` cannot see a series' first increments: a series born inside the window (the first failure of
    its kind, every series of a pod a rollout just started) has no earlier sample to subtract from, so one
    dead-lettered event would show as 0 failed/s. So a series that existed a window ago gets `rate()`, and
    one born since gets its whole value over the window (it started at 0), but only when that value is
    known to be new: Prometheus scraped its target a window ago (the series is new, not just newly seen),
    or the process started within the window. After a Prometheus restart (the cluster keeps its TSDB on an
    emptyDir) every series looks born, and old failures must not show as failures now.
    """
    series = f"{metric}{{$match}}"
    known_new = "(up offset $window == 1) or (process_start_time_seconds > time() - $window_s)"
    return (f"(rate({series}[$window]) and {series} offset $window)"
            f" or (({series} unless {series} offset $window) and on (instance, job) ({known_new})) / $window_s")


# Every PromQL the console sends, as `string.Template`s: `$match` is the label matcher (a topic, or
# nothing), `$window` the rate window and `$window_s` the same in seconds. Rates are events per second.
PROMQL: dict[str, str] = {
    # Events each service published to each topic through its sidecar (the backend's outbox relay).
    "published": f"sum by (topic, service) ({_rate('events_published_total')})",
    # Events each consumer handled successfully (answered SUCCESS to daprd), per topic.
    "consumed": f"sum by (topic, service) ({_rate('events_consumed_total')})",
    # Events that failed, per topic, service and stage: parse/drop/retry/error in a consumer, publish in the
    # backend's relay. A drop goes to the dead-letter topic at once; a retry is redelivered.
    "failed": f"sum by (topic, service, stage) ({_rate('events_failed_total')})",
    # daprd's deliveries to each app by outcome (success, retry, drop): also sees what the app never logged.
    "dapr_in": f"sum by (topic, app_id, process_status) ({_rate('dapr_component_pubsub_ingress_count')})",
    # The same for bulk subscriptions, counted per event of each batch.
    "dapr_in_bulk": f"sum by (topic, app_id, process_status) ({_rate('dapr_component_pubsub_ingress_bulk_event_count')})",
    # daprd's publishes to the broker, by success ("true"/"false").
    "dapr_out": f"sum by (topic, app_id, success) ({_rate('dapr_component_pubsub_egress_count')})",
    # Outbox rows committed but not yet published, per service: a figure that keeps growing means the relay
    # is stuck (sidecar or broker down).
    "outbox_pending": "sum by (service) (outbox_pending_events)",
    # Sparklines: the three service-side rates summed per topic, over a range.
    "published_by_topic": f"sum by (topic) ({_rate('events_published_total')})",
    "consumed_by_topic": f"sum by (topic) ({_rate('events_consumed_total')})",
    "failed_by_topic": f"sum by (topic) ({_rate('events_failed_total')})",
}
QUERY_LABEL = "console_query"  # tags each query's series in a joined request (`_instants`)
_WINDOW_RE = re.compile(r"^(\d+)(s|m|h)$")
_WINDOW_UNIT_S = {"s": 1, "m": 60, "h": 3600}


class PrometheusSource:
    """Alerts and event rates from one Prometheus at `url`."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, window: str = DEFAULT_WINDOW) -> None:
        found = _WINDOW_RE.match(window)
        if not found or not int(found.group(1)):
            raise ValueError(f"rate window {window!r}: use a duration such as 30s, 2m or 1h")
        self.window_s = int(found.group(1)) * _WINDOW_UNIT_S[found.group(2)]
        self.url = url.rstrip("/")
        self.window = window
        self.timeout_s = timeout_s
        self._session = requests.Session()
        # No retries: a Prometheus that is down should say so now; the dashboard asks again in 2 s anyway.
        self._prom = PrometheusConnect(self.url, session=self._session, timeout=timeout_s,
                                       retry=Retry(total=0))

    @property
    def address(self) -> str:
        return self.url

    def close(self) -> None:
        self._prom.close()

    # --- alerts --------------------------------------------------------------------------------------

    def alerts(self) -> AlertReport:
        """Every firing and pending alert of every alerting rule, with the rules' count and errors."""
        data = self._api("/api/v1/rules", {"type": "alert"})
        alerts: list[Alert] = []
        rules = 0
        errors: dict[str, str] = {}
        for group in data.get("groups") or ():
            for rule in group.get("rules") or ():
                if rule.get("type") != "alerting":
                    continue
                rules += 1
                if rule.get("health") == "err" and rule.get("lastError"):
                    errors[str(rule.get("name"))] = str(rule["lastError"])
                for alert in rule.get("alerts") or ():
                    alerts.append(_alert(alert, rule, str(group.get("name") or "")))
        return AlertReport(tuple(by_urgency(alerts)), rules, errors)

    # --- event rates ---------------------------------------------------------------------------------

    def event_rates(self, topic: str | None = None) -> list[TopicRates]:
        """Rates per topic now (averaged over the window), every topic that has any series."""
        match = _topic_match(topic)
        rows: dict[str, dict[str, list[Any]]] = {}

        def add(kind: str, name: str, item: object) -> None:
            rows.setdefault(name, {"published": [], "consumed": [], "failed": [], "dapr": []})[kind].append(item)

        answers = self._instants(("published", "consumed", "failed", "dapr_in", "dapr_in_bulk", "dapr_out"), match)
        for kind in ("published", "consumed"):
            for labels, value in answers[kind]:
                add(kind, labels.get("topic", ""), ServiceRate(labels.get("service", ""), value))
        for labels, value in answers["failed"]:
            add("failed", labels.get("topic", ""), ServiceRate(labels.get("service", ""), value, labels.get("stage")))
        for query in ("dapr_in", "dapr_in_bulk"):
            for labels, value in answers[query]:
                add("dapr", labels.get("topic", ""),
                    DaprRate(labels.get("app_id", ""), "in", labels.get("process_status", ""), value))
        for labels, value in answers["dapr_out"]:
            add("dapr", labels.get("topic", ""), DaprRate(labels.get("app_id", ""), "out", labels.get("success", ""), value))
        return [TopicRates(name, *(tuple(sorted(items[k], key=_order)) for k in ("published", "consumed", "failed", "dapr")))
                for name, items in sorted(rows.items())]

    def event_history(self, range_s: float, topic: str | None = None,
                      points: int = HISTORY_POINTS) -> dict[str, TopicHistory]:
        """Per-topic rates over the last `range_s` seconds: `points` values on a grid of whole steps, so
        successive refreshes line up (Prometheus evaluates the same instants) and sparklines do not jitter.
        The last step is the next whole one (at most a step ahead): evaluated now, it holds the latest rate."""
        step = max(1, round(range_s / points))
        end = math.ceil(time.time() / step) * step
        start = end - (points - 1) * step
        match = _topic_match(topic)
        series: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {}
        for kind in ("published", "consumed", "failed"):
            for labels, values in self._range(f"{kind}_by_topic", match, start, end, step):
                series.setdefault(labels.get("topic", ""), {})[kind] = on_grid(values, start, end, step)
        empty = on_grid((), start, end, step)
        return {name: TopicHistory(name, kinds.get("published", empty), kinds.get("consumed", empty),
                                   kinds.get("failed", empty))
                for name, kinds in sorted(series.items())}

    def outbox_pending(self) -> dict[str, float]:
        return {labels.get("service", ""): value for labels, value in self._instant("outbox_pending", "")}

    def events(self, topic: str | None = None, range_s: float | None = None,
               points: int = HISTORY_POINTS) -> EventsReport:
        """Everything the `events` command and the Events screen show, in one call."""
        history = self.event_history(range_s, topic, points) if range_s else {}
        return EventsReport(self.window, tuple(self.event_rates(topic)), history, self.outbox_pending())

    # --- HTTP ----------------------------------------------------------------------------------------

    def promql(self, name: str, match: str = "") -> str:
        return Template(PROMQL[name]).substitute(match=match, window=self.window, window_s=f"{self.window_s:g}")

    def _instant(self, name: str, match: str) -> list[tuple[dict[str, str], float]]:
        return self._values(self._call(lambda: self._prom.custom_query(self.promql(name, match))))

    @staticmethod
    def _values(result: Any) -> list[tuple[dict[str, str], float]]:
        out = []
        for item in result or ():
            value = _float(item.get("value", [None, None])[1])
            if value is not None:
                out.append((dict(item.get("metric") or {}), value))
        return out

    def _instants(self, names: Sequence[str], match: str) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Several instant queries in one request: each tagged with a label of its own (QUERY_LABEL) and joined
        with `or`, which keeps every series of each since no two carry the same labels. The dashboard asks for
        the event rates every 2 s: six HTTP round trips through requests were most of that refresh's CPU."""
        joined = " or ".join(f'label_replace({self.promql(name, match)}, "{QUERY_LABEL}", "{name}", "", "")'
                             for name in names)
        answers: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name in names}
        for labels, value in self._values(self._call(lambda: self._prom.custom_query(joined))):
            name = labels.pop(QUERY_LABEL, "")
            if name in answers:
                answers[name].append((labels, value))
        return answers

    def _range(self, name: str, match: str, start: float, end: float,
               step: float) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        query = self.promql(name, match)
        result = self._call(lambda: self._prom.custom_query_range(
            query, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), f"{step:g}s"))
        out = []
        for item in result or ():
            points = [(float(ts), v) for ts, raw in item.get("values") or () if (v := _float(raw)) is not None]
            out.append((item.get("metric") or {}, points))
        return out

    def _api(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """A Prometheus HTTP API endpoint the library does not wrap, through the library's session."""
        def get() -> dict[str, Any]:
            resp = self._session.get(self.url + path, params=params, timeout=self.timeout_s)
            if resp.status_code != 200:
                raise PrometheusApiClientException(f"HTTP Status Code {resp.status_code} ({resp.content!r})")
            body = resp.json()
            if not isinstance(body, dict) or body.get("status") != "success":
                raise PrometheusApiClientException(f"unexpected answer: {str(body)[:200]}")
            return body.get("data") or {}
        return self._call(get)

    def _call(self, func: Any) -> Any:
        try:
            return func()
        except requests.RequestException as exc:
            raise SourceError(SOURCE, self.url, _network_reason(exc, self.timeout_s)) from exc
        except PrometheusApiClientException as exc:
            raise SourceError(SOURCE, self.url, _api_reason(str(exc))) from exc
        except ValueError as exc:  # a body that is not JSON: not a Prometheus
            raise SourceError(SOURCE, self.url, f"answer is not Prometheus JSON: {exc}") from exc


def _alert(alert: dict[str, Any], rule: dict[str, Any], group: str) -> Alert:
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    return Alert(
        name=labels.get("alertname") or str(rule.get("name") or ""),
        state=str(alert.get("state") or ""),
        labels=labels,
        annotations={str(k): str(v) for k, v in (alert.get("annotations") or {}).items()},
        active_at=_time(alert.get("activeAt")),
        value=_float(alert.get("value")),
        group=group,
        for_s=float(rule.get("duration") or 0.0),
    )


def _topic_match(topic: str | None) -> str:
    return f"topic={json.dumps(topic)}" if topic else ""


def _order(item: ServiceRate | DaprRate) -> tuple[str, ...]:
    if isinstance(item, DaprRate):
        return (item.app_id, item.direction, item.status)
    return (item.service, item.stage or "")


def _float(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _time(raw: Any) -> float | None:
    if not isinstance(raw, str) or not raw or raw.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _network_reason(exc: requests.RequestException, timeout_s: float) -> str:
    return f"no answer within {timeout_s:g}s" if isinstance(exc, requests.Timeout) else network_reason(exc)


def _api_reason(message: str) -> str:
    """`HTTP Status Code 400 (b'{"status":"error","errorType":"bad_data","error":"..."}')` -> the error."""
    code = re.search(r"HTTP Status Code (\d+)", message)
    error = re.search(r'"error":"((?:[^"\\]|\\.)*)"', message)
    if code and error:
        return f"HTTP {code.group(1)}: {error.group(1)}"
    return message.splitlines()[0][:300]


def prometheus_source(target: Target, *, window: str = DEFAULT_WINDOW) -> PrometheusSource:
    """The Prometheus of `target`: the cluster's (TODO_CONSOLE_PROMETHEUS_URL), or the one the sandbox runs."""
    if isinstance(target, ClusterTarget):
        return PrometheusSource(target.settings.prometheus_url, timeout_s=target.settings.request_timeout_s,
                                window=window)
    from console.sandbox import control, monitoring
    from console.sandbox.layout import SandboxLayout

    state = control.read_state(SandboxLayout(target.root))
    if not state:
        raise SourceError(SOURCE, target.label, "the sandbox is not up (`todo-console sandbox up`)")
    url = (state.get("urls") or {}).get(monitoring.NAME)
    if not url:
        raise SourceAbsent(SOURCE, target.label, "this sandbox runs no Prometheus: "
                          f"{monitoring.not_running_reason() or 'it was started without one'}; then "
                          "`todo-console sandbox down` and `up` again")
    return PrometheusSource(url, window=window)
