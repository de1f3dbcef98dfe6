"""`todo-console [dash] [target flags] [--refresh SECONDS] [--readonly]`: the live dashboard (console/tui).

With no command at all, `todo-console` opens it. Every screen is reachable by key (1-8), by `:name` and
from the command palette (ctrl+p); `?` lists the keys of the screen on show, `q` quits. Mutations
(redrive, purge, restart, undo) are previewed and confirmed, and hidden and refused under --readonly.
"""

from __future__ import annotations

import argparse
import math

from console.cli import CliError
from console.output import readonly
from console.target import add_target_arguments, resolve_target

MIN_REFRESH_S = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dash", help="the live dashboard (also: todo-console with no command)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refresh", type=float, default=2.0, metavar="SECONDS",
                        help="seconds between two refreshes of each source (default 2)")
    parser.add_argument("--readonly", action="store_true",
                        help="hide and refuse every change (also TODO_CONSOLE_READONLY=1)")
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not math.isfinite(args.refresh) or args.refresh < MIN_REFRESH_S:
        raise CliError(f"--refresh {args.refresh:g}: give at least {MIN_REFRESH_S:g} seconds")
    target = resolve_target(args)
    from console.tui.app import make_dashboard  # Textual loads only when the dashboard runs

    app = make_dashboard(target, refresh_s=args.refresh, readonly=readonly(args))
    return app.run() or 0
