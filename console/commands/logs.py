"""`todo-console logs [SERVICE]`: log lines by service, correlation id, CloudEvent id and time range.

From Loki in a cluster, from the sandbox's log files locally (`console.sources.logs`). `--json` prints JSON
Lines (one object per log line) rather than one document, so that `-f` streams and `jq` reads each line as
it comes; the object's shape is `LogLine.to_dict` (console/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from console.cli import CliError
from console.model.logs import LogLine, LogQuery
from console.output import Exit, add_output_arguments
from console.sources.health import SourceError
from console.target import add_target_arguments, resolve_target
from console.timeflags import instant

DEFAULT_SINCE = "15m"
DEFAULT_LIMIT = 100
MAX_LIMIT = 5000
_HIDDEN = frozenset({"traceparent"})  # in --json; one per hop, long


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "logs", help="log lines by service, correlation id, event id and time (Loki, or the sandbox's files)",
        description="Print log lines of the platform, oldest first: from Loki in a cluster, from the sandbox's "
        "JSON log files locally. A service's sidecar lines come with it (SERVICE-dapr for the sidecar alone).",
    )
    parser.add_argument("service", nargs="?", help="an app-id (backend, worker, ...), or APP-dapr for its sidecar")
    parser.add_argument("--correlation-id", "-c", help="lines of one request and of every event it caused")
    parser.add_argument("--event-id", "-e", help="lines about one CloudEvent (its delivery, handling, dead-lettering)")
    parser.add_argument("--since", default=DEFAULT_SINCE,
                        help=f"from this long ago or this time (default {DEFAULT_SINCE}; 2h, 2024-05-01T12:00:00Z)")
    parser.add_argument("--until", default=None, help="up to this long ago or this time (default now)")
    parser.add_argument("--limit", "-n", type=int, default=DEFAULT_LIMIT,
                        help=f"the newest N lines (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})")
    parser.add_argument("--follow", "-f", action="store_true", help="after the last lines, keep printing new ones")
    add_output_arguments(parser)
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from console.sources.logs import log_source

    if not 1 <= args.limit <= MAX_LIMIT:
        raise CliError(f"--limit must be between 1 and {MAX_LIMIT}, got {args.limit}")
    now = time.time()
    since = instant(args.since, "--since", now=now)
    until = instant(args.until, "--until", now=now) if args.until else None
    if until is not None and until <= since:
        raise CliError("--until must be later than --since")
    query = LogQuery(service=args.service, correlation_id=args.correlation_id, event_id=args.event_id,
                     since=since, until=until, limit=args.limit)
    source = log_source(resolve_target(args))
    try:
        follow = source.follow(query) if args.follow else None  # first: no line written meanwhile is lost
        lines = source.query(query)
        for line in lines:
            _print(line, as_json=args.json)
        if not lines and not args.json:
            print(f"no log lines match in {source.address}", file=sys.stderr)
        if follow is not None:
            printed = {(line.ts, line.raw) for line in lines}
            for line in follow:
                if (line.ts, line.raw) not in printed:
                    _print(line, as_json=args.json)
    except SourceError as exc:
        raise CliError(str(exc)) from exc
    except KeyboardInterrupt:
        return Exit.OK
    except BrokenPipeError:  # `logs | head`: the reader left, which is not an error
        sys.stderr.close()
        return Exit.OK
    return Exit.OK


def _print(line: LogLine, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(line.to_dict(), default=str), flush=True)
        return
    print(readable(line), flush=True)


def readable(line: LogLine) -> str:
    """`time  source  level  message  key=value ...`: one line per log line, greppable."""
    fields: dict[str, Any] = {k: v for k, v in line.fields.items() if k not in _HIDDEN}
    fields.update(event_id=line.event_id, correlation_id=line.correlation_id)  # last: long, and repeated
    extras = " ".join(f"{key}={_value(value)}" for key, value in fields.items() if value not in (None, ""))
    return f"{line.time_iso}  {line.source:<18} {(line.level or '-'):<7} {line.msg}" + (f"  {extras}" if extras else "")


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.splitlines()[-1] if "\n" in text else text  # a traceback: its last line says what failed
    return json.dumps(text) if " " in text else text
