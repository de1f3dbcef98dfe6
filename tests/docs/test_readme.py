"""The README is the front door: its contract tables must not drift from the code, and its quick start
must work as pasted. The block after the quick start runs verbatim against a real sandbox in
tests/console/sandbox/test_sandbox_e2e.py (one sandbox start serves both)."""

from __future__ import annotations

import re
import shlex

from services.platform import events
from tests.docs.readme import BLOCKS, NEXT_BLOCK, README, ROOT, UP_COMMAND


def test_every_event_type_is_documented() -> None:
    for event_type in events.DATA_MODELS:
        assert f"`{event_type}`" in README, event_type


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    commands = BLOCKS[:2]
    assert all("\n" not in command for command in commands)
    main_job, test_command = commands
    assert UP_COMMAND == ".venv/bin/todo-console sandbox up"
    assert main_job.endswith(f"&& {UP_COMMAND}")
    assert test_command.endswith("pytest")
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert test_command in ci_lines
    shlex.split(test_command)  # well-formed shell


def test_the_next_block_has_nothing_to_fill_in_and_needs_no_jq() -> None:
    """Its real run is in the sandbox's e2e test; here, what a reader would otherwise trip over."""
    assert not re.search(r"<[a-z_]+>", NEXT_BLOCK), "a placeholder such as <id> is left"
    assert "=..." not in NEXT_BLOCK, "a value such as TOKEN=... is left to fill in"
    assert not re.search(r"\bjq\b", NEXT_BLOCK), "jq is not on a fresh machine: python3 is"
