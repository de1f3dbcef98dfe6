"""A closed pipe (`todo-console ... --json | head -1`) ends the command quietly, as shell tools do."""

from __future__ import annotations

import subprocess
import sys


def test_a_reader_that_goes_away_gets_no_traceback() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "budget", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone long before the command has imported its modules
    _, stderr = proc.communicate(timeout=120)
    assert b"Traceback" not in stderr, stderr.decode()
    assert proc.returncode == 141
