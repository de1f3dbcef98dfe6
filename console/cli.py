"""`todo-console`: one CLI whose subcommands each live in their own module.

Team-wide names and rules (app-ids, topics, Dapr component names, git etiquette): CONTRIBUTING.md.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed arguments and returning an exit code. Adding a
command means adding a module and one line to ``COMMAND_MODULES``; nothing else changes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Module paths, imported lazily so a command's heavy dependencies load only when it runs.
COMMAND_MODULES: tuple[str, ...] = (
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
)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2, never a stack trace."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="todo-console",
        description="Operate the Todo platform: the local sandbox, and checks of the deployment "
        "(resource budget, CRD schemas).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_path in COMMAND_MODULES:
        importlib.import_module(module_path).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"todo-console {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
