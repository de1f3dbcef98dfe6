"""The alert and event-rate models and their readable output, on crafted values."""

from __future__ import annotations

import math

from console.commands import alerts as alerts_command
from console.commands import events as events_command
from console.model.alerts import Alert, AlertReport, by_urgency
from console.model.event_rates import DaprRate, EventsReport, ServiceRate, TopicHistory, TopicRates, on_grid

NOW = 1_000_000.0


def alert(name: str, state: str, severity: str, active_at: float, for_s: float = 0.0) -> Alert:
    return Alert(name=name, state=state, labels={"alertname": name, "severity": severity},
                 annotations={"summary": f"{name} summary"}, active_at=active_at, value=1.0, for_s=for_s)


def test_firing_first_then_severity_then_age() -> None:
    ordered = by_urgency([
        alert("PendingCritical", "pending", "critical", NOW - 10),
        alert("FiringWarningNew", "firing", "warning", NOW - 5),
        alert("FiringWarningOld", "firing", "warning", NOW - 500),
        alert("FiringCritical", "firing", "critical", NOW - 1),
    ])
    assert [a.name for a in ordered] == ["FiringCritical", "FiringWarningOld", "FiringWarningNew", "PendingCritical"]


def test_readable_alerts_say_when_a_pending_one_fires() -> None:
    report = AlertReport((alert("TodoScrapeTargetDown", "pending", "warning", NOW - 20, for_s=300),
                          alert("TodoDeadLetterQueueGrowing", "firing", "critical", NOW - 3700)), rules=8)
    lines = alerts_command.readable(AlertReport(tuple(by_urgency(report.alerts)), 8), now=NOW).splitlines()
    assert lines[0].split() == ["ALERT", "STATE", "SEVERITY", "SINCE", "SUMMARY"]
    assert lines[1].split()[:5] == ["TodoDeadLetterQueueGrowing", "firing", "critical", "1h01m", "ago"]
    assert "pending (fires in 4m40s)" in lines[2]
    assert lines[-1] == "1 firing, 1 pending (8 alert rules evaluated)"


def test_no_rules_loaded_is_said_not_hidden() -> None:
    text = alerts_command.readable(AlertReport((), rules=0, rule_errors={"TodoX": "bad expr"}), now=NOW)
    assert text.splitlines() == [
        "nothing firing (0 alert rules evaluated)",
        "warning: Prometheus has no alert rules loaded, so no alert can fire",
        "warning: rule TodoX fails to evaluate: bad expr",
    ]


def test_on_grid_fills_quiet_steps_with_zero_and_drops_nan() -> None:
    grid = on_grid([(100.0, 1.5), (130.0, math.nan), (140.0, 2.0)], start=100.0, end=140.0, step=10.0)
    assert grid == ((100.0, 1.5), (110.0, 0.0), (120.0, 0.0), (130.0, 0.0), (140.0, 2.0))


def test_readable_events_break_failures_down_by_stage() -> None:
    rates = TopicRates(
        "task-events", published=(ServiceRate("backend", 2.0),),
        consumed=(ServiceRate("audit", 2.0), ServiceRate("worker", 1.5)),
        failed=(ServiceRate("worker", 0.5, "drop"), ServiceRate("worker", 0.0, "retry")),
        dapr=(DaprRate("worker", "in", "drop", 0.5), DaprRate("worker", "in", "success", 1.5),
              DaprRate("backend", "out", "true", 2.0)))
    history = TopicHistory("task-events", published=((0.0, 0.0), (10.0, 1.0), (20.0, 2.0)))
    report = EventsReport("2m", (rates,), {"task-events": history}, {"backend": 3.0})
    assert report.failing == (rates,)
    assert rates.to_dict()["failed_per_s"] == 0.5
    lines = events_command.readable(report, "15m").splitlines()
    assert lines[1].split() == [
        "task-events", "2.00", "audit", "2.00,", "worker", "1.50", "worker/drop", "0.50", "worker", "drop", "0.50,",
        "worker", "success", "1.50", "▁▅█"]  # a stage at 0/s is not listed; daprd's publishes are not deliveries
    assert lines[-1] == "rates over the last 2m; outbox pending: backend 3"
    assert events_command.readable(EventsReport("2m", ()), "15m").startswith("no event metrics yet")
