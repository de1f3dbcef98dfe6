"""The README is the front door: its contract tables must not drift from the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from services.platform import events

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_event_type_is_documented() -> None:
    for event_type in events.DATA_MODELS:
        assert f"`{event_type}`" in README, event_type


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    commands = [block.strip() for block in blocks[:2]]
    assert all("\n" not in command for command in commands)
    main_job, test_command = commands
    assert "todo-console sandbox up" in main_job
    assert test_command.endswith("pytest")
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert test_command in ci_lines
    shlex.split(test_command)  # well-formed shell
