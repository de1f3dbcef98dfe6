"""The sandbox's JSON log files, standing in for Loki with the same queries.

Each process of the sandbox writes `<sandbox>/logs/<name>.log` (console/sandbox/README.md); which files a
service has is `console.sandbox.control.log_paths`' business (a service brings its sidecar's). A query
reads each file backwards from its end and stops at the first line older than `since` or once `limit`
lines match, so asking for the last 15 minutes of a sandbox that ran for days reads only those minutes.
`follow` is `control.follow` (tail -f over the same files) with the query's filters.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Generator, Iterator
from pathlib import Path

from console.model.logs import LogLine, LogQuery, failure_reason, parse_line, parse_time
from console.sandbox import control
from console.sandbox.layout import SandboxLayout
from console.sources.health import SourceError

SOURCE = "sandbox logs"
BLOCK = 64 * 1024
# Lines that mention one event: its delivery attempts, handling and dead-lettering; a few hundred at most.
REASON_SCAN_LIMIT = 500
# Every JSON line the sandbox writes has a `ts` or `time` key (first for ours, last for Prometheus's); a regex
# finds it without parsing the line (a quote inside a value is escaped, so it cannot fake the key).
_TIME_RE = re.compile(r'"(?:ts|time)":\s*"([^"]+)"')


class SandboxLogSource:
    """`LogSource` over one sandbox's log directory."""

    def __init__(self, layout: SandboxLayout, *, poll_s: float = 0.2) -> None:
        self.layout = layout
        self.poll_s = poll_s

    @property
    def address(self) -> str:
        return str(self.layout.logs)

    def query(self, query: LogQuery) -> list[LogLine]:
        found: list[LogLine] = []
        for name, path in self._paths(query.service):
            found.extend(reversed(_scan(name, path, query)))  # file order, so equal times keep it
        found.sort(key=lambda line: line.ts)
        return found[-query.limit:] if query.limit > 0 else found

    def follow(self, query: LogQuery) -> Generator[LogLine, None, None]:
        """The files are opened now, not at the first `next()`, so no line written in between is lost."""
        return _matching(control.follow(self._paths(query.service), self.poll_s), query)

    def reason_for(self, event_id: str) -> str | None:
        return failure_reason(self.query(LogQuery(event_id=event_id, limit=REASON_SCAN_LIMIT)))

    def _paths(self, service: str | None) -> list[tuple[str, Path]]:
        if not self.layout.logs.is_dir():
            raise SourceError(SOURCE, self.address, "no such directory (has this sandbox ever started?)")
        try:
            return control.log_paths(self.layout, service)
        except control.SandboxError as exc:
            raise SourceError(SOURCE, self.address, str(exc)) from exc


def _matching(lines: Generator[tuple[str, str], None, None], query: LogQuery) -> Generator[LogLine, None, None]:
    try:
        for name, raw in lines:
            if query.matches_text(raw):
                line = parse_line(raw, source=name) or parse_line(raw, source=name, ts=time.time())
                if line is not None:
                    yield line
    finally:
        lines.close()  # closes the files


def _scan(name: str, path: Path, query: LogQuery) -> list[LogLine]:
    """The newest `query.limit` matching lines of one file, newest first, reading from the end."""
    found: list[LogLine] = []
    labels = {"file": str(path)}
    newer_ts: float | None = None
    try:
        fallback_ts = path.stat().st_mtime
    except OSError:
        return found
    for raw in _reverse_lines(path):
        ts = _line_ts(raw)
        if ts is None:
            ts = newer_ts if newer_ts is not None else fallback_ts  # a stray text line: as old as the next one
        newer_ts = ts
        if query.since is not None and ts < query.since:
            break
        if (query.until is not None and ts > query.until) or not query.matches_text(raw):
            continue
        line = parse_line(raw, source=name, ts=ts, labels=labels)
        if line is not None:
            found.append(line)
            if 0 < query.limit <= len(found):
                break
    return found


def _line_ts(raw: str) -> float | None:
    match = _TIME_RE.search(raw)
    return parse_time(match.group(1)) if match else None


def _reverse_lines(path: Path) -> Iterator[str]:
    """The file's lines, last first, reading it in blocks from the end (it may be large)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        rest = b""
        while position > 0:
            step = min(BLOCK, position)
            position -= step
            handle.seek(position)
            chunk = handle.read(step) + rest
            lines = chunk.split(b"\n")
            rest = lines.pop(0)  # may be cut: completed by the next block
            for raw in reversed(lines):
                if raw.strip():
                    yield raw.decode(errors="replace")
        if rest.strip():
            yield rest.decode(errors="replace")
