"""The dashboard's screens by name: the key that opens each, its `:` command names, and one line for the
command palette. The App's modes, its keys, the command line and the palette all read this one table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class ScreenInfo:
    name: str  # the mode name and the `:` command
    title: str
    key: str  # the key that opens it from anywhere
    summary: str
    aliases: tuple[str, ...] = ()

    def factory(self) -> Callable[[], Screen[None]]:
        def build() -> Screen[None]:
            return _classes()[self.name]()
        return build


SCREENS: tuple[ScreenInfo, ...] = (
    ScreenInfo("overview", "Overview", "1", "services, alerts, platform, dead letters, worst lag, findings",
               ("o", "status", "home")),
    ScreenInfo("lag", "Lag", "2", "consumer groups, topics, partitions: lag in messages and time, ETA, KEDA",
               ("consumers", "groups")),
    ScreenInfo("dead-letters", "Dead letters", "3", "DLQ depth, messages, redrive and purge",
               ("dlq", "dlqs", "deadletters")),
    ScreenInfo("rollouts", "Rollouts", "4", "Deployments: progress, history, restart, undo",
               ("rollout", "deploy", "deployments", "dp")),
    ScreenInfo("pods", "Pods", "5", "status, probes, restarts, node, events; describe", ("pod", "po")),
    ScreenInfo("platform", "Platform", "6", "Strimzi, Dapr, KEDA, cert-manager resources and conditions",
               ("resources", "crds", "res")),
    ScreenInfo("events", "Events", "7", "published, consumed and failed rates per topic", ("rates", "ev")),
    ScreenInfo("logs", "Logs", "8", "live tail by service, correlation id or event id", ("log", "tail")),
    ScreenInfo("runbooks", "Runbooks", "9", "the notebooks: parameters, last result; run one cell by cell",
               ("runbook", "rb", "notebooks")),
)
HELP = ScreenInfo("help", "Help", "?", "every key of the current screen", ("h",))


def matches(name: str) -> list[ScreenInfo]:
    """The screens `name` can mean: the one whose name, alias or key it is, else every screen whose name it
    starts (`:dea`). More than one is an ambiguous prefix (`:r`: rollouts or runbooks), which the command line
    names rather than guessing."""
    wanted = name.strip().lstrip(":").lower()
    if not wanted:
        return []
    every = (*SCREENS, HELP)
    for info in every:
        if wanted in (info.name, info.key, *info.aliases):
            return [info]
    return [info for info in every if info.name.startswith(wanted)]


def _classes() -> dict[str, type[Screen[None]]]:
    from console.tui.screens.dead_letters import DeadLettersScreen
    from console.tui.screens.events import EventsScreen
    from console.tui.screens.lag import LagScreen
    from console.tui.screens.logs import LogsScreen
    from console.tui.screens.overview import OverviewScreen
    from console.tui.screens.platform import PlatformScreen
    from console.tui.screens.pods import PodsScreen
    from console.tui.screens.rollouts import RolloutsScreen
    from console.tui.screens.runbooks import RunbooksScreen

    return {"overview": OverviewScreen, "lag": LagScreen, "dead-letters": DeadLettersScreen,
            "rollouts": RolloutsScreen, "pods": PodsScreen, "platform": PlatformScreen, "events": EventsScreen,
            "logs": LogsScreen, "runbooks": RunbooksScreen}
