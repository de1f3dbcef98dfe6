"""A broker outage that loses nothing: the broker process frozen (SIGSTOP) and thawed (SIGCONT).

To every client a frozen broker is one that stopped answering: connections stay open, requests time out,
producers and consumers retry, as when a broker hangs or the network to it drops. Unlike killing the
sandbox's in-memory broker, which loses every record and offset by design, nothing is lost, so what the drill
measures is the platform's recovery, not the broker's storage.

A frozen broker must never outlive the drill: before freezing, a watchdog process is started in its own
session that thaws the broker after the longest outage allowed, even if the runbook's kernel dies or is
interrupted. Run as `python -m console.runbooks.procedures.freeze --pid P --thaw-after S`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from console.runbooks.procedures import ProcedureError

WATCHDOG_MODULE = "console.runbooks.procedures.freeze"
WATCHDOG_MARGIN_S = 30.0  # past the planned outage, before the watchdog thaws on its own
STOP_TIMEOUT_S = 5.0


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` (`T`: stopped by a signal), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]  # the name in parentheses may contain spaces


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class BrokerFreeze:
    """Freeze a broker process for at most `max_s` seconds; thaw() (or the watchdog) ends it."""

    def __init__(self, pid: int, expected_command: str = "tansu") -> None:
        if expected_command not in command_line(pid):
            raise ProcedureError(f"process {pid} is not the broker (its command line has no {expected_command!r})")
        self.pid = pid
        self.frozen_at: float | None = None
        self.thawed_at: float | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    def freeze(self, max_s: float) -> None:
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", WATCHDOG_MODULE, "--pid", str(self.pid), "--thaw-after", f"{max_s:.1f}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen_at = time.time()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while not self.frozen and time.monotonic() < deadline:
            time.sleep(0.01)  # the signal is delivered asynchronously
        if not self.frozen:
            self.thaw()
            raise ProcedureError(f"the broker (pid {self.pid}) did not stop on SIGSTOP "
                                 f"(state {process_state(self.pid)})")

    @property
    def frozen(self) -> bool:
        return process_state(self.pid) == "T"

    def thaw(self) -> None:
        if self.frozen_at is None or self.thawed_at is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it died while frozen: the supervisor restarts it
            os.kill(self.pid, signal.SIGCONT)
        self.thawed_at = time.time()
        if self._watchdog is not None:
            self._watchdog.terminate()
            self._watchdog.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    """The watchdog: sleep, then SIGCONT the broker (harmless if it was thawed already)."""
    parser = argparse.ArgumentParser(prog=f"python -m {WATCHDOG_MODULE}")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--thaw-after", type=float, required=True)
    args = parser.parse_args(argv)
    time.sleep(args.thaw_after)
    with contextlib.suppress(ProcessLookupError):
        os.kill(args.pid, signal.SIGCONT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
