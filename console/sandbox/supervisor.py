"""The detached sandbox supervisor: runs a `Plan`, restarts crashes, records state, stops cleanly.

It behaves like a small kubelet: it starts the broker and creates the declared topics, starts
every process in its own process group, probes readiness, restarts a crashed process after a
doubling backoff (reset after a healthy run) and counts restarts. Everything it knows goes to
`<dir>/state.json`, rewritten atomically, which `status`, `up` and the console read. SIGTERM (from
`down`) stops every group, SIGTERM then SIGKILL, then the broker and, in durable mode, its local S3
(which has nothing to save: it writes through to disk).

Run as ``python -m console.sandbox.supervisor --dir DIR`` (what `up` does, detached).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from console.sandbox import jsonlog
from console.sandbox.broker import Broker, BrokerError, external_broker, start_tansu
from console.sandbox.layout import SandboxLayout
from console.sandbox.manifests import ManifestError, load_manifests, topics_to_create
from console.sandbox.plan import Plan, write_json_atomic
from console.sandbox.postgres import accepts_connections
from console.sandbox.procs import (
    GRACE_S,
    ManagedProcess,
    group_alive,
    raise_priority,
    signal_group,
    stop_group,
)
from console.sandbox.s3 import LocalS3, S3Error, start_local_s3
from console.sandbox.topics import TopicError, TopicResult, ensure_topics

log = logging.getLogger("console.sandbox.supervisor")  # not "__main__" when run with -m

SUPERVISOR_MODULE = "console.sandbox.supervisor"
TICK_S = 0.1  # while something is starting or due to restart
# Once everything runs and is ready, the loop only notices a process that exited (restarted after 1 s
# at the earliest: RestartPolicy) and a stop request. Every 0.1 s that loop was about a third of the
# supervisor's idle CPU (its main thread 0.17 of 0.47 % of a core, /proc counters over 30 s; issue 16).
STEADY_TICK_S = 0.5
STARTUP_PROBE_S = 0.25
READY_FAILURE_THRESHOLD = 3  # kubelet's default failureThreshold
# Durable mode puts two storage round trips on the path of every produce and a LIST plus a GET per batch
# on every fetch; on two busy cores each round trip waited 5-15 ms for a CPU, at nice -10 0.5 ms. The
# broker and its S3 get that precedence when the OS allows it, as a cluster gives Kafka guaranteed CPU.
BROKER_NICE = -10
HEARTBEAT_S = 0.5  # while stopping, state.json is rewritten this often: `down` waits while it is


class StartupError(RuntimeError):
    """The broker, local S3 or topics could not be set up: the sandbox cannot run at all."""


class Child:
    """A managed process plus what the supervisor tracks about it."""

    def __init__(self, proc: ManagedProcess) -> None:
        self.proc = proc
        self.restarts = 0
        self.failures = 0  # consecutive crashes, for the backoff
        self.ready = False
        self.ready_at: float | None = None  # when this incarnation first answered its probe
        self.last_exit: int | None = None
        self.restart_at: float | None = None  # monotonic time of the pending restart
        self.start_after: float | None = None  # first start pending on `start_after_url`, until then
        self.seen_ready = False  # this incarnation was ready once: liveness applies from then on
        self.live_failures = 0
        self.ready_failures = 0  # failed readiness probes in a row since it was last ready
        self.next_probe = 0.0  # monotonic time of its next probe once it has been ready
        self.next_live_probe = 0.0  # monotonic time of its next liveness probe, likewise

    @property
    def name(self) -> str:
        return self.proc.spec.name


class BrokerRunner:
    """The broker (and, in durable mode, its local S3) as one restartable unit."""

    def __init__(self, plan: Plan, layout: SandboxLayout) -> None:
        self.spec = plan.broker
        self.layout = layout
        self.broker: Broker | None = None
        self.s3: LocalS3 | None = None
        self.restarts = 0
        self.started_at: float | None = None
        self.nice = 0

    def start(self) -> None:
        spec = self.spec
        try:
            if spec.mode == "external":
                self.broker = external_broker(spec.bootstrap)
            else:
                env: dict[str, str] = {}
                storage = "memory://tansu/"
                if spec.mode == "durable":
                    if self.s3 is None or not self.s3.alive():
                        if self.s3 is not None:
                            self.s3.stop()  # closes the log of the one that died
                        self.s3 = start_local_s3(self.layout.s3_data, self.layout.log("s3"), port=spec.s3_port,
                                                 bucket=spec.bucket)
                    env, storage = self.s3.tansu_env(), self.s3.storage_url
                self.broker = start_tansu(self.layout.logs, port=spec.port, storage_url=storage, extra_env=env)
                self.prioritise()
        except (BrokerError, S3Error) as exc:
            raise StartupError(str(exc)) from exc
        self.started_at = time.time()

    def prioritise(self) -> None:
        """BROKER_NICE for the broker and its S3 (each leads its own process group), when permitted."""
        pids = [p.process.pid for p in (self.broker, self.s3) if p is not None and p.process is not None]
        self.nice = BROKER_NICE if all(raise_priority(pid, BROKER_NICE) for pid in pids) else 0
        if not self.nice:
            log.info("the broker runs at normal priority (raising it needs root or RLIMIT_NICE)")

    def alive(self) -> bool:
        if self.broker is None:
            return False
        return self.broker.alive() and (self.s3 is None or self.s3.alive())

    def stop(self, step: Callable[[str], None] = lambda _: None) -> None:
        """Stop the broker, then its S3 (which has nothing to save: every write is already on disk).
        `step` hears each step as it begins."""
        if self.broker is not None and self.broker.managed:
            step("stopping the broker")
            self.broker.stop()
        if self.s3 is not None:
            step("stopping the local S3")
            self.s3.stop()

    def state(self) -> dict[str, Any]:
        proc = self.broker.process if self.broker else None
        alive = self.alive()
        return {
            "mode": self.spec.mode,
            "bootstrap": self.spec.bootstrap,
            "storage": self.broker.storage if self.broker else None,
            "pid": proc.pid if proc and alive else None,  # a stopped broker's pid is no one's
            "alive": alive,
            "restarts": self.restarts,
            "started_at": self.started_at,
            "nice": self.nice,
            "s3": {"endpoint": self.s3.endpoint,
                   "pid": self.s3.process.pid if self.s3.process and self.s3.alive() else None}
            if self.s3 else None,
        }


class Supervisor:
    def __init__(self, plan: Plan, layout: SandboxLayout | None = None) -> None:
        self.plan = plan
        self.layout = layout or SandboxLayout(Path(plan.dir))
        self.children = [Child(ManagedProcess(p, self.layout.log(p.name))) for p in plan.processes]
        self.broker = BrokerRunner(plan, self.layout)
        self.topics: list[TopicResult] = []
        self.phase = "starting"
        self.error: str | None = None
        self.started_at = time.time()
        self.ready_at: float | None = None
        self._stop_requested = False
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self._broker_restart_at: float | None = None
        self.shutdown_steps: list[dict[str, Any]] = []  # what `down` reports: each step and when it began
        self._state_lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------------

    def request_stop(self, *_: Any) -> None:
        self._stop_requested = True

    def run(self) -> int:
        """Start everything, supervise until asked to stop, then stop everything. Exit code."""
        self.layout.ensure()
        self.layout.pid.write_text(str(os.getpid()))
        code = 0
        if self.plan.absent:
            log.info("services not started: no services/<name>/main.py", extra={"absent": self.plan.absent})
        try:
            self.write_state()
            self.broker.start()
            self.write_state()  # `up` shows each step as it happens
            self.create_topics()
            self.write_state()
            self.write_registry()
            for child in self.children:
                if child.proc.spec.start_after_url:
                    child.start_after = time.monotonic() + child.proc.spec.start_after_timeout_s
                else:
                    child.proc.start()
            self.write_state()
            self.loop()
        except (StartupError, TopicError, ManifestError) as exc:
            self.phase, self.error, code = "failed", str(exc), 1
            log.error("sandbox failed to start", extra={"error": str(exc)})
        except Exception as exc:  # report it in state.json, then still clean up
            self.phase, self.error, code = "failed", f"supervisor crashed: {exc!r}", 1
            log.exception("supervisor crashed")
        finally:
            self.shutdown()
        return code

    def loop(self) -> None:
        deadline = time.monotonic() + self.plan.ready_timeout_s
        next_probe = 0.0
        while not self._stop_requested:
            now = time.monotonic()
            self.check_broker(now)
            for child in self.children:
                self.check_child(child, now)
            if now >= next_probe:
                self.probe()
                if self.phase == "starting":
                    if all(c.ready for c in self.children) and self.broker.alive():
                        self.phase, self.ready_at = "ready", time.time()
                        log.info("sandbox ready", extra={"seconds": round(self.ready_at - self.started_at, 2)})
                    elif now > deadline:
                        self.phase = "degraded"
                        waiting = ", ".join(c.name for c in self.children if not c.ready)
                        self.error = f"not ready after {self.plan.ready_timeout_s:.0f}s: {waiting}"
                        log.warning("sandbox not ready", extra={"error": self.error})
                elif self.phase == "degraded" and all(c.ready for c in self.children):
                    self.phase, self.error, self.ready_at = "ready", None, time.time()
                self.write_state()
                next_probe = now + (STARTUP_PROBE_S if self._starting_up() else self.plan.probe_interval_s)
            time.sleep(TICK_S if self._starting_up() or self._starts_pending() else STEADY_TICK_S)

    def shutdown(self) -> None:
        """Stop everything, one step at a time, each step in state.json as it begins; while it runs a
        heartbeat rewrites the file every `HEARTBEAT_S`, so `down` can tell slow from stuck."""
        if self.phase != "failed":
            self.phase = "stopping"
        done = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(done,), name="shutdown-heartbeat", daemon=True)
        heartbeat.start()
        try:
            # The database last, once its clients have gone, as the broker.
            self.step("stopping the services and sidecars")
            stop_all([c.proc for c in self.children if c.proc.spec.kind != "database"])
            if any(c.proc.spec.kind == "database" for c in self.children):
                self.step("stopping the database")
                stop_all([c.proc for c in self.children if c.proc.spec.kind == "database"])
            self.broker.stop(self.step)
        finally:
            done.set()
            heartbeat.join()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.phase == "stopping":
            self.phase = "stopped"
        for child in self.children:
            child.ready = False
        self.write_state()
        try:
            if self.layout.pid.read_text().strip() == str(os.getpid()):
                self.layout.pid.unlink()
        except OSError:
            pass
        log.info("sandbox stopped", extra={"phase": self.phase})

    def step(self, name: str) -> None:
        self.shutdown_steps.append({"step": name, "at": time.time()})
        log.info("shutdown step", extra={"step": name})
        self.write_state()

    def _heartbeat(self, done: threading.Event) -> None:
        while not done.wait(HEARTBEAT_S):
            self.write_state()

    # --- supervision -------------------------------------------------------------------------------

    def create_topics(self) -> None:
        if not self.plan.manifests_path:
            return
        manifests = load_manifests(Path(self.plan.manifests_path))
        self.topics = ensure_topics(self.plan.broker.bootstrap, topics_to_create(manifests))

    def check_child(self, child: Child, now: float) -> None:
        proc = child.proc
        if child.start_after is not None:
            waited_out = now >= child.start_after
            if waited_out or probe_url(proc.spec.start_after_url, None, timeout=0.2):
                if waited_out:
                    log.warning("starting without its dependency", extra={"proc": child.name,
                                                                           "waited_for": proc.spec.start_after_url})
                child.start_after = None
                proc.start()
                self.write_state()
            return
        if child.restart_at is not None:
            if now >= child.restart_at and not self._stop_requested:
                child.restart_at = None
                child.restarts += 1
                log.info("restarting process", extra={"proc": child.name, "restarts": child.restarts})
                proc.start()
                self.write_state()
            return
        code = proc.exit_code()
        if code is None:
            return
        proc.reap_group()
        child.seen_ready, child.live_failures, child.ready_failures = False, 0, 0
        ran = now - (proc.started_mono or now)
        child.failures = 1 if ran >= self.plan.restart.reset_after_s else child.failures + 1
        child.ready, child.last_exit = False, code
        delay = self.plan.restart.delay(child.failures)
        child.restart_at = now + delay
        log.warning(
            "process exited", extra={"proc": child.name, "exit_code": code, "restart_in_s": delay}
        )
        self.write_state()

    def check_broker(self, now: float) -> None:
        if self.plan.broker.mode == "external" or self.broker.alive():
            return
        if self._broker_restart_at is None:
            self._broker_restart_at = now + self.plan.restart.delay(1)
            log.warning("broker exited; restarting", extra={"restart_in_s": self.plan.restart.delay(1)})
            if self.broker.broker is not None:
                self.broker.broker.stop()
            return
        if now < self._broker_restart_at:
            return
        self._broker_restart_at = None
        try:
            self.broker.start()
            self.broker.restarts += 1
            self.create_topics()  # memory storage came back empty
        except (StartupError, TopicError) as exc:
            log.error("broker restart failed", extra={"error": str(exc)})
            self._broker_restart_at = time.monotonic() + self.plan.restart.max_backoff_s
        self.write_state()

    def _starting_up(self) -> bool:
        """The sandbox, or a process started or restarted since, has not been ready yet: probe it often."""
        return self.phase == "starting" or any(c.proc.running() and not c.seen_ready for c in self.children)

    def _starts_pending(self) -> bool:
        """A process waits for its dependency or its restart, or the broker for its restart."""
        return self._broker_restart_at is not None or any(
            c.start_after is not None or c.restart_at is not None for c in self.children)

    def probe(self) -> None:
        """Probe each running process that is due: one not yet ready since it (re)started at every call
        (every STARTUP_PROBE_S while starting), one that has been ready every `probe_interval_s`;
        liveness of one that has been ready every `liveness_interval_s`.

        Probing everything every 0.25-2 s cost the idle sandbox about 2 % of a core (the supervisor's
        requests, and each service's /readyz asking its sidecar); kubelet probes every 5-10 s
        (the manifests' periodSeconds: readiness 5 s, liveness 10 s), kubelet's startupProbe faster."""
        now = time.monotonic()
        due = [c for c in self.children if c.proc.running() and (not c.seen_ready or c.next_probe <= now)]
        for child in due:
            child.next_probe = now + self.plan.probe_interval_s
        live_due = [c for c in self.children if c.proc.running() and c.seen_ready and c.proc.spec.liveness_url
                    and c.next_live_probe <= now]
        for child in live_due:
            child.next_live_probe = now + self.plan.liveness_interval_s
        ready = {c.name: self._pool.submit(probe_url, c.proc.spec.ready_url, c.proc.spec.ready_status)
                 for c in due}
        live = {c.name: self._pool.submit(probe_url, c.proc.spec.liveness_url, None, 2.0) for c in live_due}
        for child in self.children:
            if child.name in ready:
                self.record_readiness(child, ready[child.name].result(), running=True)
            elif not child.proc.running():
                self.record_readiness(child, False, running=False)
        for child in self.children:
            if child.name in live:
                self.check_liveness(child, live[child.name].result())

    @staticmethod
    def record_readiness(child: Child, answered: bool, *, running: bool) -> None:
        """Kubelet's readiness: a ready process turns unready only after `READY_FAILURE_THRESHOLD` failed
        probes in a row, so one slow answer on a loaded machine does not flap it (failureThreshold: 3)."""
        if answered:
            if not child.ready:
                child.ready_at = time.time()
            child.ready, child.seen_ready, child.ready_failures = True, True, 0
            return
        child.ready_failures += 1
        if not running or child.ready_failures >= READY_FAILURE_THRESHOLD:
            child.ready = False

    def check_liveness(self, child: Child, alive: bool) -> None:
        """Kubelet's liveness: a process that stopped answering is stopped, then restarted as a crash."""
        child.live_failures = 0 if alive else child.live_failures + 1
        if child.live_failures < child.proc.spec.liveness_failures:
            return
        log.warning("liveness probe failed; stopping the process to restart it",
                    extra={"proc": child.name, "failures": child.live_failures})
        child.live_failures = 0
        if child.proc.process is not None:
            stop_group(child.proc.process.pid, GRACE_S, child.proc.process)  # then check_child restarts it

    # --- state -------------------------------------------------------------------------------------

    def write_registry(self) -> None:
        """app-id -> ports, derived from the sidecar specs (the sidecars re-read it on change)."""
        apps: dict[str, dict[str, int]] = {}
        services = {p.app_id: p for p in self.plan.processes if p.kind == "service"}
        for spec in self.plan.processes:
            if spec.kind != "sidecar" or not spec.app_id:
                continue
            app = services.get(spec.app_id)
            apps[spec.app_id] = {
                "app_port": app.port if app and app.port else 0,
                "dapr_http_port": spec.port or 0,
                "dapr_grpc_port": spec.extra_ports[0] if spec.extra_ports else 0,
            }
        write_json_atomic(self.layout.registry, apps)

    def state(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "error": self.error,
            "supervisor_pid": os.getpid(),
            "dir": str(self.layout.root),
            "started_at": self.started_at,
            "ready_at": self.ready_at,
            "updated_at": time.time(),
            "broker": self.broker.state(),
            "topics": [vars(t) for t in self.topics],
            "processes": {c.name: self.child_state(c) for c in self.children},
            "urls": self.plan.urls,
            "databases": self.plan.databases,
            "absent": self.plan.absent,
            "shutdown": self.shutdown_steps,
        }

    def child_state(self, child: Child) -> dict[str, Any]:
        spec, proc = child.proc.spec, child.proc
        running = proc.running()
        return {
            "kind": spec.kind,
            "app_id": spec.app_id,
            "pid": proc.pid if running else None,
            "pgid": proc.pid,  # the leader's pid is its group id (start_new_session)
            "port": spec.port,
            "ports": spec.ports,
            "running": running,
            "ready": child.ready and running,
            "restarts": child.restarts,
            "started_at": proc.started_at,
            "ready_at": child.ready_at if child.ready and running else None,
            "last_exit": child.last_exit,
            "log": str(proc.log_path),
        }

    def write_state(self) -> None:
        with self._state_lock:  # the shutdown heartbeat writes from its own thread
            write_json_atomic(self.layout.state, self.state())


def stop_all(procs: list[ManagedProcess], grace_s: float = GRACE_S) -> None:
    """Signal every group at once (SIGTERM, or the process's own stop signal), wait for all of them
    together, then SIGKILL the rest."""
    groups = [(p, p.pid) for p in procs if p.pid is not None]
    for proc, pgid in groups:
        signal_group(pgid, proc.spec.stop_signal_number)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        for proc, _ in groups:
            proc.exit_code()  # reap
        if not any(group_alive(pgid) for _, pgid in groups):
            break
        time.sleep(0.05)
    for proc, _ in groups:
        proc.stop(grace_s=0.5)  # SIGKILLs what is left and closes the log


def probe_url(url: str | None, expected: int | None, timeout: float = 1.0) -> bool:
    """GET `url`: True when it answers `expected` (any 2xx when None); a postgresql:// URL: True when
    the server accepts a session."""
    if not url:
        return True
    if url.startswith("postgresql"):
        return accepts_connections(url, timeout)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback URLs from the plan)
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
    except (OSError, ValueError):
        return False
    return 200 <= status < 300 if expected is None else status == expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SUPERVISOR_MODULE, description="Run a sandbox plan (started by `up`).")
    parser.add_argument("--dir", required=True, type=Path, help="sandbox directory holding plan.json")
    args = parser.parse_args(argv)
    jsonlog.configure(os.environ.get("LOG_LEVEL", "INFO").upper())
    layout = SandboxLayout(args.dir.resolve())
    supervisor = Supervisor(Plan.load(layout.plan), layout)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
