"""Loki over its HTTP API: the cluster's logs by service, correlation id, CloudEvent id and time range.

Fluent Bit ships every container's JSON line to Loki with the stream labels `namespace`, `pod`,
`container` and `app` (`app.kubernetes.io/name`; kustomize/operators/fluent-bit/values.yaml), so one
service's lines are `{namespace="todo-app", app="worker"}` and its sidecar's are the same stream selector
with `container="daprd"`. Ids are matched with line filters (`|= "<id>"`): a service logs them as JSON
fields, daprd only inside its message, and a line filter finds both without parsing every line.

Queries go to `GET /loki/api/v1/query_range` (docs: https://grafana.com/docs/loki/latest/reference/loki-http-api/).
`follow` polls the same endpoint with `direction=forward` from the last line seen rather than opening
`/loki/api/v1/tail` (a websocket): it works through any HTTP proxy or `kubectl port-forward`, and a poll
re-reads a short overlap so lines that reach Loki a little late are not skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from typing import Any

import httpx

from console.model.logs import SIDECAR_SUFFIX, LogLine, LogQuery, failure_reason, parse_line
from console.sources.health import SourceError, network_reason

SOURCE = "loki"
QUERY_RANGE = "/loki/api/v1/query_range"
SIDECAR_CONTAINER = "daprd"
MAX_LIMIT = 5000  # Loki's default max_entries_limit_per_query
REASON_LOOKBACK_S = 7 * 86400  # the deployment keeps logs for 7 days (kustomize/operators/loki/values.yaml)
REASON_SCAN_LIMIT = 500
FOLLOW_OVERLAP_S = 5.0


class LokiSource:
    """`LogSource` over a Loki; `namespace` is the application namespace whose logs are searched."""

    def __init__(self, url: str, *, namespace: str = "todo-app", timeout_s: float = 5.0, poll_s: float = 1.0) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self._client = httpx.Client(timeout=timeout_s)

    @property
    def address(self) -> str:
        return self.url

    def close(self) -> None:
        self._client.close()

    def logql(self, query: LogQuery) -> str:
        """The LogQL for `query`: a stream selector, then one line filter per id."""
        matchers = [f"namespace={_quote(self.namespace)}"]
        if query.service:
            app = query.service.removesuffix(SIDECAR_SUFFIX)
            matchers.append(f"app={_quote(app)}")
            if query.service.endswith(SIDECAR_SUFFIX):
                matchers.append(f"container={_quote(SIDECAR_CONTAINER)}")
        selector = "{" + ", ".join(matchers) + "}"
        return " ".join([selector, *(f"|= {_quote(needle)}" for needle in query.needles)])

    def query(self, query: LogQuery) -> list[LogLine]:
        params: dict[str, Any] = {"query": self.logql(query), "direction": "backward",
                                  "limit": min(max(query.limit, 1), MAX_LIMIT)}
        if query.since is not None:
            params["start"] = _ns(query.since)
        if query.until is not None:
            params["end"] = _ns(query.until)
        lines = self._streams(params)
        lines.sort(key=lambda line: line.ts)
        return lines[-query.limit:] if query.limit > 0 else lines

    def follow(self, query: LogQuery) -> Generator[LogLine, None, None]:
        """From now (the call, not the first `next()`) on."""
        return self._follow(self.logql(query), time.time())

    def _follow(self, logql: str, start: float) -> Generator[LogLine, None, None]:
        seen: dict[tuple[float, str], float] = {}  # (ts, raw) of lines already yielded, within the overlap
        while True:
            now = time.time()
            batch = self._streams({"query": logql, "direction": "forward", "limit": MAX_LIMIT,
                                   "start": _ns(start), "end": _ns(now)})
            for line in sorted(batch, key=lambda line: line.ts):
                key = (line.ts, line.raw)
                if key not in seen:
                    seen[key] = line.ts
                    yield line
            start = max(start, now - FOLLOW_OVERLAP_S)
            seen = {key: ts for key, ts in seen.items() if ts >= start}
            time.sleep(self.poll_s)

    def reason_for(self, event_id: str) -> str | None:
        """The failure reason of a dead-lettered event (daprd writes none on the message in the cluster)."""
        since = time.time() - REASON_LOOKBACK_S
        return failure_reason(self.query(LogQuery(event_id=event_id, since=since, limit=REASON_SCAN_LIMIT)))

    # --- HTTP ----------------------------------------------------------------------------------------

    def _streams(self, params: dict[str, Any]) -> list[LogLine]:
        data = self._get(QUERY_RANGE, params)
        if data.get("resultType") != "streams":
            raise SourceError(SOURCE, self.url, f"expected a streams result, got {data.get('resultType')!r}")
        lines: list[LogLine] = []
        for stream in data.get("result") or ():
            labels = {str(k): str(v) for k, v in (stream.get("stream") or {}).items()}
            source = _source_name(labels)
            for value in stream.get("values") or ():
                # [ns, line], or [ns, line, {structuredMetadata, parsed}] with categorize-labels
                line = parse_line(str(value[1]), source=source, ts=int(value[0]) / 1e9, labels=labels)
                if line is not None:
                    lines.append(line)
        return lines

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = self._client.get(self.url + path, params=params)
        except httpx.TimeoutException as exc:
            raise SourceError(SOURCE, self.url, f"no answer within {self.timeout_s:g}s") from exc
        except httpx.HTTPError as exc:
            raise SourceError(SOURCE, self.url, network_reason(exc)) from exc
        if resp.status_code != 200:
            raise SourceError(SOURCE, self.url, f"HTTP {resp.status_code}: {_error_message(resp)}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise SourceError(SOURCE, self.url, "answer is not JSON (is this Loki?)") from exc
        if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
            raise SourceError(SOURCE, self.url, f"unexpected answer: {str(body)[:200]}")
        return body["data"]


def _source_name(labels: dict[str, str]) -> str:
    """`worker` for the app container, `worker-dapr` for its daprd: the sandbox's names for the same logs."""
    app = labels.get("app") or labels.get("pod") or "?"
    return app + SIDECAR_SUFFIX if labels.get("container") == SIDECAR_CONTAINER else app


def _quote(value: str) -> str:
    """A LogQL string literal (Go's double-quoted syntax, which JSON's escaping satisfies)."""
    return json.dumps(value)


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _error_message(resp: httpx.Response) -> str:
    """Loki answers errors as JSON `{"code", "status", "message"}` (2.9+) or as plain text (older)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("message") or body.get("error")):
        return str(body.get("message") or body.get("error"))
    return resp.text.strip().splitlines()[0][:300] if resp.text.strip() else resp.reason_phrase
