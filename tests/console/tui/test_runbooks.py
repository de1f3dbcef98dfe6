"""The Runbooks screen with Pilot: every key, real runs of the real runbook library end to end.

provision-oke runs against the OCI stand-in (through the real `oci` SDK, as tests/notebooks does): a dry run
passes, and on a Free Tier tenancy its preflight check fails, which the screen must show first, naming the
cell. Cancelling runs a small notebook of the test's own whose cell sleeps. Bad parameters and --readonly are
refused before any kernel starts (the runs folder stays empty).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from console.runbooks.records import list_results, write_result
from console.tui.app import DashboardApp
from console.tui.screens import matches
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.help import HelpScreen, keys_of
from console.tui.screens.runbook_run import ResultScreen, RunScreen
from console.tui.screens.runbooks import RunbookFormScreen, RunbooksScreen
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.parameter_form import ParameterForm
from tests.console.runbooks.conftest import write_notebook
from tests.console.tui.conftest import SIZE, recorded_app
from tests.console.tui.recorded_runbooks import failed_provision, write_results
from tests.provisioning.conftest import TENANCY, USER, make_cloud, oci_environment, write_spec
from tests.provisioning.oci_standin import ApiKey, OciStandIn
from tests.provisioning.oci_standin.cloud import free_tier_limits

pytestmark = pytest.mark.anyio

RUN_TIMEOUT_S = 180  # a kernel start and provision-oke's cells: seconds on a quiet machine, far more under load


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The runs folder the screen reads last results from and new runs go to."""
    folder = tmp_path / "runs"
    monkeypatch.setenv("TODO_RUNBOOK_RUNS_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def api_key() -> ApiKey:
    return ApiKey.generate(TENANCY, USER)


@pytest.fixture
def oci(tmp_path: Path, api_key: ApiKey, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OciStandIn, Path]]:
    """The OCI stand-in (a paid tenancy's limits) with this process's environment pointing at it (the runbook's
    kernel inherits it), and a cluster spec for its compartment."""
    server = OciStandIn(make_cloud(), api_key).start()
    oci_environment(tmp_path / "oci", api_key, server, monkeypatch)
    yield server, write_spec(tmp_path / "cluster.yaml")
    server.stop()


async def until(pilot: Pilot[int], ready: Callable[[], object], what: str, within_s: float = RUN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + within_s
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within_s}s waiting for {what}")
        await pilot.pause(0.1)


def nothing_ran(runs: Path) -> bool:
    return not runs.exists()


def text(app: DashboardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def rows(app: DashboardApp, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, LiveTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def runbooks(pilot: Pilot[int], app: DashboardApp) -> RunbooksScreen:
    await pilot.press("9")
    return await loaded(pilot, app)


async def loaded(pilot: Pilot[int], app: DashboardApp) -> RunbooksScreen:
    screen = app.screen
    assert isinstance(screen, RunbooksScreen)
    await until(pilot, lambda: screen.catalog is not None, "the runbooks to be read", 60)
    return screen


async def choose(pilot: Pilot[int], app: DashboardApp, name: str) -> None:
    """Put the list's cursor on `name` (the table is sorted by name)."""
    table = app.screen.query_one("#runbooks", LiveTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()


async def run_from_the_form(pilot: Pilot[int], app: DashboardApp) -> RunScreen:
    await pilot.press("ctrl+r")
    assert isinstance(app.screen, ConfirmScreen)
    await pilot.press("y")
    screen = app.screen
    assert isinstance(screen, RunScreen)
    await until(pilot, lambda: not screen.running, "the run to end")
    return screen


async def test_the_list_shows_each_runbook_its_parameters_and_last_result_and_answers_its_keys(runs: Path) -> None:
    write_results(runs)
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        # `:` and the keys read the registry (test_keys.py drives both for every screen); the palette, from here
        assert [[info.name for info in matches(typed)] for typed in (":runbooks", "rb", "notebooks", "9")] == [
            ["runbooks"]] * 4
        await pilot.press("ctrl+p", *"Runb")
        await pilot.pause(0.5)
        await pilot.press("enter")
        screen = await loaded(pilot, app)
        listed = {row[0]: row for row in rows(app, "#runbooks")}
        assert sorted(listed) == ["bootstrap-cluster", "deploy", "dlq-triage", "kafka-outage-drill", "lag-report",
                                  "provision-oke", "smoke-test", "verify-rollout"]
        assert listed["provision-oke"][1:] == ["failed 18m ago at cell 5/8",
                                               "cluster_spec, oci_profile, skip_preflight, dry_run",
                                               "Provision OKE: preflight, plan, apply"]
        assert listed["smoke-test"][1] == "passed 5m ago"  # the newest of its two runs
        assert listed["deploy"][1:3] == ["never run", "overlay, kustomize_dir, image_tag +5 more"]
        assert listed["lag-report"][3] == "Lag report: every consumer group's lag in m…"
        await choose(pilot, app, "provision-oke")
        details = text(app, "#runbook")
        assert "skip_preflight  bool  = false" in details
        assert "dry_run         bool  = true         preflight and plan only: create nothing" in details
        assert 'last run  failed 18m ago at cell 5/8 "preflight: does the tenancy allow what' in details
        assert "container-engine cluster-count: 1 needed, 0 allowed" in details
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed_keys = dict(app.screen.rows)
        assert "Run (parameters first)" in listed_keys.values()  # enter
        assert (listed_keys["v"], listed_keys["9"]) == ("Last result", "Runbooks")
        assert "Read again" in listed_keys.values()  # ctrl+r
        await pilot.press("escape")
        await choose(pilot, app, "deploy")
        assert f"last run  never run (no result in {runs})" in text(app, "#runbook")
        await pilot.press("v")
        assert app.screen is screen
        assert any("deploy has never run" in n.message for n in app._notifications)
        write_result(replace(failed_provision(), runbook="deploy", status="passed", failure=None,
                             started_at="2027-01-15T07:59:00+00:00"), runs / "deploy-20270115T075900Z.json")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: rows(app, "#runbooks")[1][1] == "passed 1m ago", "the new result", 60)


async def test_provision_oke_runs_through_the_screen_and_a_failed_check_shows_its_cell_first(
        runs: Path, oci: tuple[OciStandIn, Path]) -> None:
    server, spec = oci
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await runbooks(pilot, app)
        await choose(pilot, app, "provision-oke")
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, RunbookFormScreen)
        assert form.query_one(ParameterForm).values() == {
            "cluster_spec": "", "oci_profile": "", "skip_preflight": False, "dry_run": True}
        assert isinstance(form.focused, Input)
        assert form.focused.id == "field-cluster_spec"
        form.query_one("#field-cluster_spec", Input).value = str(spec)  # typing is tested on a shorter value
        await pilot.press("enter")  # enter moves on to the next field
        assert isinstance(form.focused, Input)
        assert form.focused.id == "field-oci_profile"
        await pilot.press("ctrl+r")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert f"* cluster_spec    {spec}" in confirm.plan
        assert "dry_run is on: preflight and plan only: create nothing" in confirm.plan
        await pilot.press("n")  # no: back on the form, nothing ran
        assert app.screen is form
        assert nothing_ran(runs)

        # A dry run, end to end: each cell reported as it ran, the result, the executed notebook's outputs.
        run = await run_from_the_form(pilot, app)
        cells = rows(app, "#cells")
        assert [c[0] for c in cells] == [f"{i}/8" for i in range(1, 9)]
        assert {c[2] for c in cells} == {"passed"}
        assert cells[2][1] == "load the cluster spec and connect to OCI"
        assert text(app, "#progress").startswith("PASSED: provision-oke, 2 checks in")
        report = text(app, "#report")
        assert "PASS  the tenancy allows what the plan creates" in report
        assert re.search(r"\n  to create +14\n", report), report
        assert "dry run: nothing was created or changed" in report
        assert "c" not in {key for key, _ in keys_of(run)}  # nothing left to cancel
        await pilot.press("escape", "escape")  # the run, the form: back on the list, read again
        assert app.screen is screen
        await until(pilot, lambda: "passed" in rows(app, "#runbooks")[5][1], "the list to show the new run", 60)
        await pilot.press("v")
        result = app.screen
        assert isinstance(result, ResultScreen)
        assert result.result.result == list_results(runs, "provision-oke")[0].result
        await until(pilot, lambda: "outputs" in text(app, "#report"), "the outputs to be read back", 60)
        assert "dry run: nothing was created or changed" in text(app, "#report")

        # The same on a Free Tier tenancy: the preflight check fails, and that comes first.
        server.cloud.limits = free_tier_limits()
        await pilot.press("escape", "enter")
        app.screen.query_one("#field-cluster_spec", Input).value = str(spec)
        await run_from_the_form(pilot, app)
        failed = 'FAILED at cell 5/8 "preflight: does the tenancy allow what the plan creates?"'
        assert text(app, "#progress").startswith(failed)
        report = text(app, "#report")
        assert report.startswith(failed)
        assert "the tenancy allows what the plan creates: " in report.splitlines()[1]
        assert '(the run stopped at cell 8/8 "verdict")' in report
        assert '── cell 5/8 "preflight: does the tenancy allow what the plan creates?" failed' in report
        assert "◀ the run failed here" in report
        assert "RunbookFailed" in report  # the verdict cell's error, among the outputs
        states = {c[1]: c[2] for c in rows(app, "#cells")}
        assert states["preflight: does the tenancy allow what the plan creates?"] == "failed"
        assert list_results(runs, "provision-oke")[0].failure.cell == failed.removeprefix("FAILED at ")  # type: ignore[union-attr]


async def test_bad_parameters_are_refused_naming_the_parameter_and_nothing_runs(runs: Path) -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await runbooks(pilot, app)
        await choose(pilot, app, "kafka-outage-drill")
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, RunbookFormScreen)
        field = form.query_one("#field-outage_s", Input)
        field.focus()
        await pilot.press("ctrl+u", *"0.5")  # ctrl+u: Input's delete to the start
        row = form.query_one("#parameter-outage_s")
        assert row.has_class("-refused")  # refused as it was typed
        assert str(row.query_one(".parameter-refused", Static).render()) == (
            "refused: 0.5 is below the minimum of 1")
        form.query_one("#field-writes_per_s", Input).value = "lots"
        field.value = "30"
        await pilot.pause()
        assert not row.has_class("-refused")
        await pilot.press("ctrl+r")
        assert app.screen is form  # no confirmation: nothing can run
        assert text(app, "#problem") == "kafka-outage-drill: parameter writes_per_s: expected a number, got 'lots'"
        assert form.focused is form.query_one("#field-writes_per_s")
        await pilot.click("#run")
        assert app.screen is form
        assert nothing_ran(runs)


async def test_c_cancels_a_run_and_esc_waits_for_its_end(runs: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    books = tmp_path / "notebooks"
    monkeypatch.setenv("TODO_RUNBOOKS_DIR", str(books))
    write_notebook(books, "wait", "dry_run: bool = True  # nothing to change anyway",
                   "# wait a long time\nimport time\ntry:\n    print('waiting', flush=True)\n    time.sleep(120)\n"
                   "finally:\n    print('cleaned up')",
                   "# verdict\nfrom console.runbooks.kit import Verdict\nVerdict('wait').finish()")
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await runbooks(pilot, app)
        await choose(pilot, app, "wait")
        await pilot.press("enter", "ctrl+r", "y")
        assert isinstance(app.screen, RunScreen)
        run: RunScreen = app.screen
        await until(pilot, lambda: "wait a long time" in text(app, "#progress"), "the sleeping cell to start")
        assert text(app, "#progress").startswith('cell 3 of 4 "wait a long time" · ')
        await until(pilot, lambda: "waiting" in "\n".join(run.query_one("#printed").lines),  # type: ignore[attr-defined]
                    "the cell's print to show")
        await pilot.press("escape")  # refused while it runs
        assert app.screen is run
        assert any("wait is running: c cancels it" in n.message for n in app._notifications)
        await pilot.press("c", "n")
        assert run.running
        await pilot.press("c", "y")
        await until(pilot, lambda: not run.running, "the cancelled run to end")
        report = text(app, "#report")
        assert report.startswith('FAILED at cell 3/4 "wait a long time"\ncancelled by the operator (KeyboardInterrupt')
        assert "cleaned up" in report  # the cell's finally ran
        await pilot.press("escape")
        assert isinstance(app.screen, RunbookFormScreen)


async def test_readonly_hides_and_refuses_running_but_shows_results(runs: Path) -> None:
    write_results(runs)
    app = recorded_app(readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await runbooks(pilot, app)
        assert "enter" not in {key for key, _ in keys_of(screen)}
        await choose(pilot, app, "smoke-test")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert any("run smoke-test: refused, the console is read-only" in n.message for n in app._notifications)
        await pilot.press("v")
        assert isinstance(app.screen, ResultScreen)
        await until(pilot, lambda: "outputs" in text(app, "#report"), "the result to be shown", 60)
        assert text(app, "#report").startswith("PASSED: smoke-test")
        assert ("no executed notebook at /var/lib/todo/runs/smoke-test-20270115T075500Z.ipynb (moved or deleted "
                "since)") in text(app, "#report")  # the recorded run's notebook was never written
