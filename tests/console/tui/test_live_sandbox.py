"""The dashboard against a real sandbox (supervisor, tansu, the dev sidecars, the services, and Prometheus
scraping them where its binary is installed), one sandbox for the module: every screen shows the live
system; a dead letter is browsed, its logs found, redriven from the DLQ screen after a dry run and a
confirmation (the message reaches its consumer once more, once), then purged, and the worker restarted from
the Rollouts screen.

Each step waits for what it shows (`wait_for`), never for a fixed time: a key press on a loaded machine costs a
second or more (a first visit composes its screen), and the dashboard refreshes every 0.5 s (the least
`--refresh` allows), so what a step waits for comes within one short period of being true."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from kafka import KafkaProducer
from textual.widgets import Input, Log

from console.model.logs import LogQuery
from console.sandbox import control, monitoring
from console.sandbox.layout import SandboxLayout
from console.target import SandboxTarget
from console.tui.app import DashboardApp, make_dashboard
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.dead_letters import DeadLetterScreen, DlqMessagesScreen
from console.tui.screens.logs import READING, LogsScreen
from tests.console.sandbox.conftest import running_sandbox
from tests.console.tui.conftest import SIZE
from tests.console.tui.live import notes, select_row, table_rows, wait_for
from tests.utils.events import snapshot, task_event

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.anyio]
SERVICES = ["audit", "backend", "notification", "websocket", "worker"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxLayout]:
    with running_sandbox(tmp_path_factory.mktemp("dash") / "sandbox") as layout:
        yield layout


def dashboard(sandbox: SandboxLayout) -> DashboardApp:
    return make_dashboard(SandboxTarget(sandbox.root), refresh_s=0.5)


def worker_handled(sandbox: SandboxLayout, event_id: str) -> int:
    """How many times the worker process logged handling (dropping) this event: its deliveries."""
    count = 0
    for line in (sandbox.root / "logs" / "worker.log").read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event_id") == event_id and record.get("msg") in ("event dropped", "event handled"):
            count += 1
    return count


async def test_every_screen_shows_the_live_sandbox(sandbox: SandboxLayout) -> None:
    app = dashboard(sandbox)
    async with app.run_test(size=SIZE) as pilot:
        services = await wait_for(pilot, lambda: table_rows(app, "#services"), "the services")
        assert [row[0] for row in services] == SERVICES
        assert {row[1] for row in services} == {"complete"}
        await pilot.press("2")
        groups = await wait_for(pilot, lambda: table_rows(app, "#groups"), "the consumer groups")
        assert {"audit", "worker", "websocket", "notification"} <= {row[0] for row in groups}
        await pilot.press("3")
        dlqs = await wait_for(pilot, lambda: table_rows(app, "#dlqs"), "the DLQs")
        assert sorted(row[0] for row in dlqs) == ["reminders-dlq", "task-events-dlq", "task-updates-dlq"]
        await pilot.press("4")
        rollouts = await wait_for(pilot, lambda: table_rows(app, "#rollouts"), "the rollouts")
        assert [row[0] for row in rollouts] == SERVICES
        await pilot.press("5")
        pods = await wait_for(pilot, lambda: table_rows(app, "#pods"), "the pods")
        assert sorted(row[0] for row in pods) == SERVICES
        await pilot.press("6")
        resources = await wait_for(pilot, lambda: table_rows(app, "#resources"), "the platform resources")
        kinds = {row[0] for row in resources}
        assert {"Kafka", "KafkaTopic", "Subscription", "Component"} <= kinds
        await pilot.press("7")  # no event yet, so no rates: Prometheus answers, or the sandbox has none
        wanted = "ok" if monitoring.prometheus_binary() else "absent"
        await wait_for(pilot, lambda: app.hub.view("events").state == wanted, f"the event rates' source {wanted}")
        await wait_for(pilot, lambda: "prometheus" in str(app.screen.query_one("#events-state").render()),
                       "the events panel naming its source")
        await pilot.press("8")
        await pilot.pause()
        await pilot.press("s")
        app.screen.query_one("#service", Input).insert_text_at_cursor("backend")  # typing keys: test_keys.py
        await pilot.press("enter")
        assert app.hub.log_query.service == "backend"
        lines = await wait_for(pilot, lambda: (shown := list(app.screen.query_one("#lines", Log).lines)) != [READING]
                               and shown, "the lines of the new query")
        assert all(" backend" in line for line in lines if line.strip()), lines[:3]


async def test_a_dead_letter_is_redriven_and_purged_and_the_worker_restarted(sandbox: SandboxLayout) -> None:
    """A completed recurring task without a due date: the worker drops it, its sidecar dead-letters it. From
    the DLQ screen: the message, its logs, a redrive (dry run, confirmation), then a purge. Then, in the same
    App, the worker restarted from the Rollouts screen (last: the worker must be up for the dead letter)."""
    task = snapshot(rule="FREQ=DAILY", due_at=None, status="completed")
    event = task_event("completed", task)
    producer = KafkaProducer(bootstrap_servers=control.status(sandbox)["broker"]["bootstrap"])
    producer.send("task-events", key=task.id.encode(), value=event.model_dump_json().encode())
    producer.flush()
    producer.close()

    app = dashboard(sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: any(r[0] == "task-events-dlq" and r[4] != "0" for r in table_rows(app, "#dlqs")),
                       "a dead letter waiting in task-events-dlq")
        await select_row(pilot, app, "#dlqs", "task-events-dlq")
        await pilot.press("enter")
        assert isinstance(app.screen, DlqMessagesScreen)
        rows = await wait_for(pilot, lambda: [r for r in table_rows(app, "#messages") if r[2] == event.id],
                              "the dead letter in the DLQ screen")
        assert rows[0][5] == "worker"
        assert rows[0][7] == "waiting"
        assert rows[0][8].startswith("dropped")
        position = rows[0][0]
        await select_row(pilot, app, "#messages", position)
        await pilot.press("enter")
        assert isinstance(app.screen, DeadLetterScreen)
        assert f"id: {event.id}" in str(app.screen.query_one("#detail").render())

        await pilot.press("l")  # the event's logs: the worker dropped it
        assert isinstance(app.screen, LogsScreen)
        assert app.hub.log_query == LogQuery(event_id=event.id, limit=200)
        await wait_for(pilot, lambda: any("event dropped" in line for line in app.screen.query_one("#lines", Log).lines),
                       "the worker's line about the event")

        await pilot.press("3")  # back to the DLQ's messages (the mode kept its stack)
        assert isinstance(app.screen, DeadLetterScreen)
        before = worker_handled(sandbox, event.id)
        assert before == 1
        await pilot.press("r")
        confirm = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                                 "the redrive's dry run")
        assert "redrive  to task-events[" in confirm.plan
        assert event.id in confirm.plan
        assert worker_handled(sandbox, event.id) == before  # a dry run sends nothing
        await pilot.press("y")
        await wait_for(pilot, lambda: any("1 redriven" in n or ": redriven: to task-events" in n for n in notes(app)),
                       "the redrive's outcome")
        await wait_for(pilot, lambda: worker_handled(sandbox, event.id) == before + 1,
                       "the worker handling the redriven message")
        handled_at = time.monotonic()  # once more, and only once: counted again after the purge, 3 s or more later

        if monitoring.prometheus_binary():  # the worker's drops as Prometheus scraped them, within the rate window
            await pilot.press("7")
            await wait_for(pilot, lambda: any(r[0] == "task-events" and "worker/drop" in r[3]  # FAILED/S
                                              for r in table_rows(app, "#rates")),
                           "the worker's failures in task-events' rates", within=90)
            await pilot.press("3")
            assert isinstance(app.screen, DeadLetterScreen)
        await pilot.press("escape")  # the messages: the original redriven, the new failure waiting
        assert isinstance(app.screen, DlqMessagesScreen)
        states = await wait_for(pilot, lambda: (s := {r[7] for r in table_rows(app, "#messages")
                                                      if r[2] == event.id}) >= {"redriven", "waiting"} and s,
                                "the redriven dead letter and its new failure")
        assert states == {"redriven", "waiting"}
        await pilot.press("P")
        confirm = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                                 "the purge's confirmation")
        assert "pending dead letter(s) of task-events-dlq go" in confirm.plan
        await pilot.press("y")
        await wait_for(pilot, lambda: any(n.startswith("purged ") for n in notes(app)), "the purge's outcome")
        await wait_for(pilot, lambda: not table_rows(app, "#messages"), "an empty DLQ")
        await asyncio.sleep(max(0.0, handled_at + 3.0 - time.monotonic()))  # a second delivery would have come
        assert worker_handled(sandbox, event.id) == before + 1

        pid = control.status(sandbox)["processes"]["worker"]["pid"]
        await pilot.press("4")
        await wait_for(pilot, lambda: table_rows(app, "#rollouts"), "the rollouts")
        await select_row(pilot, app, "#rollouts", "worker")
        await pilot.press("u")  # the sandbox has no revisions: said, nothing done
        await wait_for(pilot, lambda: any("no revisions" in n for n in notes(app)), "undo refused")
        await pilot.press("r")
        confirm = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                                 "the restart's confirmation")
        assert control.status(sandbox)["processes"]["worker"]["pid"] == pid  # previewed, not done
        assert "dry run" in confirm.plan
        await pilot.press("y")
        await wait_for(pilot, lambda: any(n.startswith("worker restarted") for n in notes(app)), "the restart",
                       within=90)
        assert control.status(sandbox)["processes"]["worker"]["pid"] != pid
        await wait_for(pilot, lambda: control.status(sandbox)["processes"]["worker"]["ready"],
                       "the new worker process ready", within=120)
