"""Every key of every screen, with Pilot, on the recorded system: screens by key, by `:name` and from the
command palette; `?`, `/`, `esc`, `enter` drill-downs, the mouse, `q` and ctrl+c; --readonly hiding and
refusing the mutations. (The mutations themselves run against the sandbox and the stand-in:
test_live_sandbox.py, test_live_standin.py.)"""

from __future__ import annotations

import pytest
from textual.events import ScreenResume
from textual.pilot import Pilot
from textual.widgets import Log
from textual.widgets._footer import FooterKey

from console.model.logs import LogQuery
from console.tui.app import DashboardApp
from console.tui.messages import FeedUpdated
from console.tui.screens import HELP, SCREENS, _classes, matches
from console.tui.screens.command_line import CommandLine
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.dead_letters import DeadLetterScreen, DlqMessagesScreen
from console.tui.screens.help import HelpScreen, keys_of
from console.tui.screens.lag import GroupLagScreen, LagScreen, PartitionLagScreen
from console.tui.screens.logs import READING, LogsScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.screens.pods import DescribeScreen
from console.tui.screens.rollouts import HistoryScreen, RolloutsScreen
from console.tui.widgets.keys_footer import KeysFooter
from console.tui.widgets.live_table import LiveTable
from tests.console.tui.conftest import SIZE, recorded_app
from tests.console.tui.recorded import letter_rows

pytestmark = pytest.mark.anyio


def rows(app: DashboardApp, selector: str) -> list[str]:
    table = app.screen.query_one(selector, LiveTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_every_screen_opens_by_its_key_and_esc_returns_to_the_overview() -> None:
    """Each key from the screen before it (a screen switch is the costly step on a slow machine), then esc
    from the Logs screen (its own esc) and from one that keeps the shared one."""
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, OverviewScreen)
        for info in (*SCREENS[1:], SCREENS[0]):
            await pilot.press(info.key)
            assert (app.current_mode, type(app.screen)) == (info.name, _classes()[info.name])
        for key in ("8", "4"):
            await pilot.press(key, "escape")
            assert isinstance(app.screen, OverviewScreen)


def test_every_screen_has_a_command_name() -> None:
    """What `:` looks up: every screen by its name, each alias, its key and an unambiguous prefix."""
    for info in SCREENS:
        for typed in (info.name, f":{info.name.upper()}", info.key, *info.aliases):
            assert matches(typed) == [info], typed
    assert matches("dea") == matches("dead-letters")
    assert [info.name for info in matches("p")] == ["pods", "platform"]  # ambiguous: named, not guessed
    assert matches("?") == [HELP]


async def test_the_command_line_jumps_by_name_alias_or_prefix() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        for typed, mode in (("lag", "lag"), ("dlq", "dead-letters"), ("po", "pods"), ("overview", "overview")):
            await pilot.press("colon")
            assert isinstance(app.screen, CommandLine)
            await pilot.press(*typed, "enter")
            await pilot.pause()
            assert app.current_mode == mode


async def test_the_command_line_refuses_an_unknown_or_ambiguous_name_and_esc_cancels() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"nosuch", "enter")
        await pilot.pause()
        assert app.current_mode == "overview"
        assert any("no screen called 'nosuch'" in n.message for n in app._notifications)
        await pilot.press("colon", "r", "enter")
        await pilot.pause()
        assert app.current_mode == "overview", "`:r` is rollouts or runbooks: named, not guessed"
        assert any("'r' could be rollouts, runbooks" in n.message for n in app._notifications)
        await pilot.press("colon", "l", "escape")
        assert app.current_mode == "overview"
        assert not isinstance(app.screen, CommandLine)


async def test_the_command_palette_offers_every_screen() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert [f"{info.title} screen" for info in SCREENS] == titles[:len(SCREENS)]
        await pilot.press("ctrl+p", *"rollo")  # the palette refilters on every key: a few are enough
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "rollouts"


async def test_help_lists_every_key_of_the_current_screen() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = dict(app.screen.rows)
        assert listed["r"] == "Restart"
        assert listed["u"] == "Undo (roll back)"
        assert "Revision history" in listed.values()  # enter
        for key, does in (("/", "Filter"), ("esc", "Back"), (":", "Jump"), ("?", "Help"), ("q", "Quit"),
                          ("1", "Overview"), ("8", "Logs")):
            assert listed[key] == does
        assert "Cursor up" not in listed.values()  # a table's own keys are the usual ones
        await pilot.press("escape")
        assert isinstance(app.screen, RolloutsScreen)
        await pilot.press("question_mark", "question_mark")
        assert isinstance(app.screen, RolloutsScreen)


async def test_readonly_hides_and_refuses_every_mutation() -> None:
    app = recorded_app(readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        assert not {"r", "u"} & {key for key, _ in keys_of(app.screen)}
        await pilot.press("r", "u")
        await pilot.pause()
        assert isinstance(app.screen, RolloutsScreen)  # no confirmation asked: nothing planned
        messages = DlqMessagesScreen("task-events-dlq")
        app.push_screen(messages)
        await pilot.pause()
        messages.show_letters(letter_rows())
        assert not {"r", "a", "P"} & {key for key, _ in keys_of(messages)}
        await pilot.press("r", "a", "P")
        await pilot.pause()
        assert isinstance(app.screen, DlqMessagesScreen)
        assert "read-only" in str(app.screen.query_one("#verdict").render())


async def test_the_footer_follows_the_keys_of_the_screen_on_show() -> None:
    """The footer is recomposed only when its keys change (KeysFooter): a change still shows at once."""
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        footer = app.screen.query_one(KeysFooter)

        def shown() -> set[str]:
            return {key.description for key in footer.query(FooterKey)}
        mutations = {"Restart", "Undo (roll back)"}
        assert mutations | {"Back", "Filter", "Help"} <= shown()
        for readonly in (True, False):  # what --readonly does from the start: the mutations' keys go
            app.readonly = readonly
            app.screen.refresh_bindings()
            await pilot.pause()
            assert bool(mutations & shown()) is not readonly
            await pilot.press("1", "4")  # away and back, the same keys: the footer keeps them
            assert bool(mutations & shown()) is not readonly
            assert {"Back", "Filter", "Help"} <= shown()


async def test_slash_filters_the_rows_and_esc_clears_the_filter() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        assert len(rows(app, "#pods")) == 5
        await pilot.press("slash", *"crash")
        assert rows(app, "#pods") == ["notification-5f6d8-kq2"]
        await pilot.press("enter")  # keeps the filter, back to the table
        assert rows(app, "#pods") == ["notification-5f6d8-kq2"]
        assert "filter: crash" in str(app.screen.query_one("#crumbs").render())
        await pilot.press("escape")
        assert len(rows(app, "#pods")) == 5
        assert isinstance(app.screen, _classes()["pods"])


async def lag_group(pilot: Pilot[int], app: DashboardApp) -> GroupLagScreen:
    await pilot.press("2", "enter")
    assert isinstance(app.screen, GroupLagScreen)
    return app.screen


async def test_lag_drills_from_group_to_topic_to_partition_and_back() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert rows(app, "#groups") == ["reporting", "worker", "audit"]
        await pilot.press("down", "enter")
        group = app.screen
        assert isinstance(group, GroupLagScreen)
        assert group.group == "worker"
        assert rows(app, "#topics") == ["task-events"]
        assert rows(app, "#partitions") == ["task-events[0]", "task-events[1]", "task-events[2]"]
        await pilot.press("enter", "down", "enter")  # topics → partitions → task-events[1]'s history
        partition = app.screen
        assert isinstance(partition, PartitionLagScreen)
        assert str(partition.tp) == "task-events[1]"
        assert "STALL" in str(partition.query_one("#facts").render())
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, LagScreen)


async def test_enter_on_a_finding_opens_the_screen_that_shows_it() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        subjects = rows(app, "#findings")
        assert subjects[0] == "ERROR"
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        by_area = {finding.area: index for index, finding in reversed(screen.findings.items())}
        assert len(by_area) == 7  # one finding of each area: the same area opens the same screen
        for area, index in by_area.items():
            finding = screen.findings[index]
            wanted = {"resources": "platform", "lag": "lag", "rollouts": "rollouts", "pods": "pods",
                      "dlq": "dead-letters", "alerts": "overview", "events": "events"}[area]
            await pilot.press("1")
            table = screen.query_one("#findings", LiveTable)
            table.move_cursor(row=int(index))
            table.focus()
            await pilot.press("enter")
            await pilot.pause()
            assert app.current_mode == wanted, finding


async def test_the_mouse_selects_rows_and_opens_them() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.click("#pods", offset=(4, 2))  # header, then the first pod
        await pilot.click("#pods", offset=(4, 2))
        await pilot.pause()
        assert isinstance(app.screen, DescribeScreen)
        await pilot.press("escape", "4")
        await pilot.click("#rollouts", offset=(4, 5))
        await pilot.click("#rollouts", offset=(4, 5))
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        assert app.screen.deployment == "worker"


async def test_dead_letter_keys_open_the_detail_and_the_event_logs() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "enter")
        screen = app.screen
        assert isinstance(screen, DlqMessagesScreen)
        assert screen.dlq == "task-events-dlq"
        screen.show_letters(letter_rows())
        await pilot.pause()
        assert rows(app, "#messages") == ["0/0", "0/1"]
        await pilot.press("enter")
        assert isinstance(app.screen, DeadLetterScreen)
        detail = str(app.screen.query_one("#detail").render())
        assert "x-dlq-error: DROP status returned from app" in detail
        assert "type: todo.task.completed.v1" in detail
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LogsScreen)
        assert app.hub.log_query.event_id == "7f3c9a1e-5b2d-4c8e-9f61-2a7d0e4b8c15"
        assert app.screen.query_one("#event_id").value == app.hub.log_query.event_id


async def test_logs_keys_edit_and_clear_the_query() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("8")
        await pilot.pause()
        lines = app.screen.query_one("#lines", Log)
        recorded = list(lines.lines)
        assert len(recorded) == 5
        await pilot.press("s", "w")
        # The screen's resume, handled after the first key typed into the field (a busy screen's queue is behind
        # the field's): it must not fill the field again and wipe the `w` (the sandbox test once got `ackend`).
        app.screen.post_message(ScreenResume())
        await pilot.press(*"orker", "enter", "c", *"demo-3", "enter")
        assert app.hub.log_query == LogQuery(service="worker", correlation_id="demo-3", limit=200)
        assert list(lines.lines) == [READING]
        app.screen.post_message(FeedUpdated("logs", "ok"))  # a refresh that read the previous query's lines
        await pilot.pause()
        assert list(lines.lines) == [READING]
        await pilot.press("e", "escape")  # esc leaves the field, not the screen
        assert isinstance(app.screen, LogsScreen)
        await pilot.press("x")
        assert app.hub.log_query == LogQuery(limit=200)
        app.screen.post_message(FeedUpdated("logs", "ok"))
        await pilot.pause()
        assert list(lines.lines) == recorded


async def test_a_confirmation_answers_to_y_n_and_esc() -> None:
    app = recorded_app()
    answers: list[bool | None] = []
    async with app.run_test(size=SIZE) as pilot:
        for key in ("y", "n", "escape"):
            app.push_screen(ConfirmScreen("Purge?", "plan"), answers.append)
            await pilot.pause()
            await pilot.press(key)
        app.push_screen(ConfirmScreen("Redrive?", "nothing to redrive", can_proceed=False), answers.append)
        await pilot.pause()
        await pilot.press("y")
    assert answers == [True, False, False, False]


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
async def test_q_and_ctrl_c_quit(key: str) -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await pilot.pause()
    assert app.return_code == 0
    assert not app.is_running
