"""Process groups: start a child in its own group, stop the whole group, never leave orphans.

Each child runs in a new session (so its own process group): a service that forks workers or a
sidecar with helper processes is stopped as a unit with `killpg`, SIGTERM first and SIGKILL
after a grace period, the way kubelet stops a pod.
"""

from __future__ import annotations

import errno
import logging
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from console.sandbox.plan import ProcessSpec

log = logging.getLogger(__name__)

GRACE_S = 5.0


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(pid_alive(pid) for pid in group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is `pgid` (from /proc, zombies included)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def run_as_kwargs(user: str | None) -> dict[str, Any]:
    """`subprocess` arguments that run a child as `user` (only root can): its uid, its primary group
    and no supplementary groups; none when `user` is None."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def raise_priority(pgid: int, nice: int) -> bool:
    """Run every thread of process group `pgid` at niceness `nice` (below 0: ahead of the rest). False when
    the OS does not allow it (only root, or an RLIMIT_NICE that permits it, may go below 0).

    Linux keeps a niceness per thread; PRIO_PGRP sets it on every thread of the group, and threads
    started later inherit their creator's, so calling this right after the start covers them all.
    """
    try:
        os.setpriority(os.PRIO_PGRP, pgid, nice)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ESRCH):
            return False
        raise
    return True


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError as exc:
        if exc.errno not in (errno.ESRCH, errno.EPERM):
            raise


def stop_group(pgid: int, grace_s: float = GRACE_S, process: subprocess.Popen[bytes] | None = None,
               sig: int = signal.SIGTERM) -> None:
    """`sig` (SIGTERM unless the process wants another) to the group, wait up to `grace_s`, then
    SIGKILL whatever is left."""
    signal_group(pgid, sig)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if process is not None:
            process.poll()  # reap our direct child so it stops counting as alive
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    signal_group(pgid, signal.SIGKILL)
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        if process is not None:
            process.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.02)


class ManagedProcess:
    """One `ProcessSpec` in its own process group, with its output appended to a log file."""

    def __init__(self, spec: ProcessSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.started_at: float | None = None  # wall clock, for uptime in `status`
        self.started_mono: float | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 (outlives this function: closed by its owner)
        env = {**os.environ, **self.spec.env}
        self.process = subprocess.Popen(
            self.spec.argv,
            cwd=self.spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **run_as_kwargs(self.spec.user),
        )
        self.started_at = time.time()
        self.started_mono = time.monotonic()
        log.info("process started", extra={"proc": self.spec.name, "pid": self.process.pid})

    def exit_code(self) -> int | None:
        """None while running; the exit code (negative = signal) once it ended."""
        return None if self.process is None else self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reap_group(self) -> None:
        """After the leader died: kill whatever it left in its group (they would hold its ports)."""
        if self.process is not None:
            signal_group(self.process.pid, signal.SIGKILL)

    def stop(self, grace_s: float = GRACE_S) -> None:
        if self.process is not None:
            stop_group(self.process.pid, grace_s, self.process, self.spec.stop_signal_number)
            self.process.poll()
        if self._log is not None:
            self._log.close()
            self._log = None


def terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop one child we started: SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
