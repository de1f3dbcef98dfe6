"""A Loki stand-in for the tests: `GET /loki/api/v1/query_range` with Loki's real request and response contract.

Loki cannot run on these machines, so this server answers the one endpoint the console's Loki source uses,
as Loki documents and ships it (https://grafana.com/docs/loki/latest/reference/loki-http-api/):

- parameters `query` (required), `start` and `end` (nanosecond epoch, float seconds or RFC 3339; `end`
  defaults to now, `start` to an hour before it; start inclusive, end exclusive), `limit` (default 100),
  `direction` (`backward`, the default, or `forward`);
- a 200 body `{"status": "success", "data": {"resultType": "streams", "result": [{"stream": {labels},
  "values": [["<ns>", "<line>"], ...]}], "stats": {...}}}`, entries ordered by `direction`, `limit` applied
  across streams;
- errors as Loki 2.9+ writes them: the HTTP status and `{"code": 400, "status": "error", "message": ...}`.

It parses the LogQL subset the console sends: a stream selector with `=`, `!=`, `=~`, `!~` matchers (at
least one that cannot match the empty string, as Loki requires), then line filters `|=`, `!=`, `|~`, `!~`
with double-quoted or backtick strings. Anything else (parsers, label filters, metric queries) is refused
with Loki's 400, so a source that starts sending more fails here instead of passing on a lenient fake.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

NS = 1_000_000_000


class LogQLError(ValueError):
    """A query Loki would refuse: the message is Loki's parse error text."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None  # Prometheus/Loki regexes are anchored
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class LineFilter:
    op: str
    value: str

    def matches(self, line: str) -> bool:
        if self.op == "|=":
            return self.value in line
        if self.op == "!=":
            return self.value not in line
        found = re.search(self.value, line) is not None
        return found if self.op == "|~" else not found


@dataclass(frozen=True)
class LogQuery:
    matchers: tuple[Matcher, ...]
    filters: tuple[LineFilter, ...]


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>\|=|\|~|!=|!~|=~|=|\{|\}|,|\||\(|\)|\[|\])
    | (?P<other>\S)
    )""", re.VERBOSE)


def _tokens(query: str) -> Iterator[tuple[str, str, int]]:
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None or match.end() == position:
            break
        kind = match.lastgroup or "other"
        yield kind, match.group(kind), match.start(kind) + 1
        position = match.end()


def _unquote(token: str) -> str:
    return token[1:-1] if token.startswith("`") else json.loads(token)


def parse_logql(query: str) -> LogQuery:
    """The stream selector and line filters of `query`, or a LogQLError worded as Loki words it."""
    tokens = list(_tokens(query))
    if not tokens:
        raise LogQLError("parse error : syntax error: unexpected $end")
    index = 0

    def expect(kind: str, value: str | None = None) -> str:
        nonlocal index
        if index >= len(tokens):
            raise LogQLError(f"parse error at line 1, col {len(query) + 1}: syntax error: unexpected $end")
        got_kind, got, col = tokens[index]
        if got_kind != kind or (value is not None and got != value):
            raise LogQLError(f"parse error at line 1, col {col}: syntax error: unexpected {got}")
        index += 1
        return got

    expect("op", "{")
    matchers = []
    while True:
        label = expect("ident")
        op = expect("op")
        if op not in ("=", "!=", "=~", "!~"):
            raise LogQLError(f"parse error at line 1, col {tokens[index - 1][2]}: syntax error: unexpected {op}")
        matchers.append(Matcher(label, op, _unquote(expect("string"))))
        if index < len(tokens) and tokens[index][1] == "}":
            index += 1
            break
        expect("op", ",")
    filters = []
    while index < len(tokens):
        kind, op, col = tokens[index]
        if kind != "op" or op not in ("|=", "!=", "|~", "!~"):
            raise LogQLError(f"parse error at line 1, col {col}: syntax error: unexpected {op} "
                             "(this stand-in supports stream selectors and line filters only)")
        index += 1
        filters.append(LineFilter(op, _unquote(expect("string"))))
    if not any(not m.matches({}) for m in matchers):
        raise LogQLError("queries require at least one regexp or equality matcher that does not have an "
                         'empty-compatible value. For instance, app=~".*" does not meet this requirement, '
                         'but app=~".+" will')
    return LogQuery(tuple(matchers), tuple(filters))


def parse_time(raw: str, name: str) -> int:
    """Nanoseconds from Loki's accepted forms: an integer (ns), a float (seconds) or RFC 3339."""
    try:
        if re.fullmatch(r"\d+", raw):
            return int(raw)
        if re.fullmatch(r"\d+\.\d*", raw):
            return int(float(raw) * NS)
        return int(datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp() * NS)
    except ValueError:
        raise LogQLError(f'invalid {name} parameter: cannot parse "{raw}" to a valid timestamp') from None


@dataclass
class LokiStandIn:
    """Holds streams (labels -> entries) and serves them; `requests` records every query string received."""

    streams: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, labels: Mapping[str, str], ts_ns: int, line: str) -> None:
        """What a Loki push does for one entry (a client such as Fluent Bit would POST /loki/api/v1/push)."""
        with self.lock:
            self.streams.setdefault(tuple(sorted(labels.items())), []).append((ts_ns, line))

    def query_range(self, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests.append(dict(params))
        started = time.perf_counter()
        try:
            if not params.get("query"):
                raise LogQLError("query must be supplied")
            query = parse_logql(params["query"])
            end = parse_time(params["end"], "end") if "end" in params else time.time_ns()
            start = parse_time(params["start"], "start") if "start" in params else end - 3600 * NS
            limit = int(params.get("limit", "100"))
            direction = params.get("direction", "backward").lower()
            if direction not in ("backward", "forward"):
                raise LogQLError(f"invalid direction '{params['direction']}'")
            if limit <= 0:
                raise LogQLError("limit must be a positive value")
            if end < start:
                raise LogQLError("end timestamp must not be before or equal to start time")
        except (LogQLError, ValueError) as exc:
            return 400, {"code": 400, "status": "error", "message": str(exc)}
        with self.lock:
            selected = [(dict(key), entries) for key, entries in self.streams.items()
                        if all(m.matches(dict(key)) for m in query.matchers)]
        scanned = [(labels, ts, line) for labels, entries in selected for ts, line in entries if start <= ts < end]
        entries = [(labels, ts, line) for labels, ts, line in scanned if all(f.matches(line) for f in query.filters)]
        entries.sort(key=lambda e: e[1], reverse=direction == "backward")
        entries = entries[:limit]
        result: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
        for labels, ts, line in entries:
            key = tuple(sorted(labels.items()))
            result.setdefault(key, {"stream": labels, "values": []})["values"].append([str(ts), line])
        elapsed = time.perf_counter() - started
        processed = sum(len(line) for _, _, line in scanned)
        return 200, {"status": "success", "data": {
            "resultType": "streams",
            "result": list(result.values()),
            "stats": {
                "summary": {"bytesProcessedPerSecond": int(processed / elapsed) if elapsed else 0,
                            "linesProcessedPerSecond": int(len(scanned) / elapsed) if elapsed else 0,
                            "totalBytesProcessed": processed, "totalLinesProcessed": len(scanned),
                            "execTime": elapsed, "queueTime": 0, "subqueries": 0,
                            "totalEntriesReturned": len(entries), "splits": 0, "shards": 0},
                "querier": {"store": {"totalChunksRef": 0, "totalChunksDownloaded": 0}},
                "ingester": {"totalReached": 1, "totalChunksMatched": len(selected),
                             "totalBatches": 1, "totalLinesSent": len(entries)},
            },
        }}


def _handler(loki: LokiStandIn) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            if url.path == "/loki/api/v1/query_range":
                status, body = loki.query_range(params)
            elif url.path == "/ready":
                status, body = 200, {"ready": True}
            else:
                status, body = 404, {"code": 404, "status": "error", "message": "not found"}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: object) -> None:  # quiet: pytest shows failures, not access logs
            pass

    return Handler


@contextmanager
def running_loki() -> Iterator[tuple[str, LokiStandIn]]:
    """(base URL, stand-in) of a stand-in served on a free loopback port until the block ends."""
    loki = LokiStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(loki))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="loki-standin",
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", loki
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
