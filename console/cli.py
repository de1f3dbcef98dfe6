"""`todo-console`: one CLI whose subcommands each live in their own module.

Team-wide names and rules (app-ids, topics, Dapr component names, git etiquette): CONTRIBUTING.md.

Each command module exposes ``register(subparsers)``, which adds its parser (named as the module)
and sets ``func`` to a callable taking the parsed arguments and returning an exit code. Adding a
command means adding a module and one line to ``COMMAND_MODULES``; nothing else changes.

Without a command, `todo-console [target flags]` opens the dashboard (`dash`).

A run imports only the module of the command it runs: the others pull in Kafka, Kubernetes or the
provisioning's models, most of a second of CPU that `todo-console status` has no use for. Only
`--help` without a command, or a command that does not exist, builds the whole parser.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Module paths, imported lazily so a command's heavy dependencies load only when it runs.
COMMAND_MODULES: tuple[str, ...] = (
    "console.commands.status",
    "console.commands.sandbox",
    "console.commands.budget",
    "console.commands.preflight",
    "console.commands.crds",
    "console.commands.logs",
    "console.commands.alerts",
    "console.commands.events",
    "console.commands.provision",
    "console.commands.lag",
    "console.commands.dlq",
    "console.commands.rollout",
    "console.commands.resources",
    "console.commands.pods",
    "console.commands.runbook",
    "console.commands.dash",
)
DASHBOARD = "dash"  # what `todo-console` runs without a command


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2, never a stack trace."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser: with `command`, only that command's (when it exists), else every command's."""
    parser = argparse.ArgumentParser(
        prog="todo-console",
        description="Operate the Todo platform: what is wrong and where (status), Kafka lag and dead "
        "letters, rollouts, pods, platform resources, logs and alerts, on a cluster or the local sandbox; "
        "the sandbox itself; checks of the deployment (resource budget, preflight, CRD schemas); provisioning.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True  # `main` supplies the dashboard when no command is given
    chosen = [m for m in COMMAND_MODULES if m.rsplit(".", 1)[1] == command]
    for module_path in chosen or COMMAND_MODULES:
        importlib.import_module(module_path).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, DASHBOARD)  # no command: the dashboard, with whatever target flags were given
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"todo-console {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`todo-console status --json | head`): as a shell tool does, stop quietly.
        # stdout is pointed at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what the shell reports for a command killed by a closed pipe


if __name__ == "__main__":
    sys.exit(main())
