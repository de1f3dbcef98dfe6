"""The hub's Prometheus areas against the real sandbox and its real Prometheus (the package's obs_sandbox): alerts,
and event rates whose history is seeded from a range query and then moves with each refresh."""

from __future__ import annotations

import itertools

from console.live.hub import make_hub
from console.target import SandboxTarget
from tests.utils.waiting import wait_until

from .conftest import ObsSandbox
from .test_sandbox_observability import RULES, create_task


def test_alerts_and_event_rates_with_their_history(obs_sandbox: ObsSandbox) -> None:
    with make_hub(SandboxTarget(obs_sandbox.layout.root)) as hub:
        assert hub.refresh_alerts() == "ok"
        alerts = hub.view("alerts")
        assert (alerts.source, alerts.address) == ("prometheus", obs_sandbox.prometheus)
        assert alerts.value is not None
        assert alerts.value.rules == RULES

        def published() -> bool:
            create_task(obs_sandbox, "hub rates")
            assert hub.refresh_events() == "ok"
            report = hub.view("events").value
            return report is not None and any(t.topic == "task-events" and t.published_per_s > 0 for t in report.topics)

        wait_until(published, timeout=90, interval=1.0, message="task-events published, as the hub sees it")
        report = hub.view("events").value
        assert report is not None
        history = report.history["task-events"]
        steps = {b[0] - a[0] for a, b in itertools.pairwise(history.published)}
        assert (len(history.published), steps) == (60, {15})  # 15 minutes on 60 whole steps
        assert history.published[-1][1] > 0  # the newest step holds the newest sample
        assert "backend" in report.outbox_pending
