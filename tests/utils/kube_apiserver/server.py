"""The HTTP side of the stand-in: the Kubernetes REST paths over TLS, with the real server's wire contract.

- discovery: /version, /api, /api/v1, /apis, /apis/<group>/<version> (legacy documents);
- GET an object, list a collection (labelSelector, fieldSelector, limit/continue with a consistent
  snapshot, list items without kind/apiVersion for built-in kinds, as the server sends them), watch a
  collection (a chunked stream of JSON lines: ADDED/MODIFIED/DELETED, objects leaving or entering a
  selector become DELETED/ADDED, BOOKMARK events under allowWatchBookmarks, and an ERROR event carrying
  a 410 Expired `Status` for a resourceVersion older than the change log);
- PATCH (JSON patch, merge patch, strategic merge patch for built-in kinds, `dryRun=All`, a
  resourceVersion in the patched object as a precondition -> 409) and DELETE;
- server-side apply (PATCH `application/apply-patch+yaml`, `fieldManager` required, `force`, `dryRun=All`):
  creates the object when absent (201, RBAC `create` too), otherwise merges the applied configuration into
  the live object with strategic merge's list keys (structured merge uses the same keys for the lists a
  workload has) and writes only when something changed, as a no-op apply leaves the resourceVersion alone.
  Field ownership is not tracked: a field dropped from an applied configuration is not removed, and no
  apply conflicts (the console applies with `force=true`, as `kubectl apply --server-side --force-conflicts`);
- every error as a `Status` body with the server's reason and message: 400, 401, 403 (RBAC over the
  served Roles), 404, 405, 409, 410, 415, 422.

A stopped server closes every open connection (watches included) and a started one listens on the same
port again, so clients see an API server that went away and came back.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.utils.kube_apiserver import patches, resources
from tests.utils.kube_apiserver.controller import (
    DEPLOYMENT,
    POD,
    REPLICASET,
    ControlPlane,
    apply_deployment_defaults,
)
from tests.utils.kube_apiserver.rbac import User, allowed, forbidden_message
from tests.utils.kube_apiserver.resources import ResourceType
from tests.utils.kube_apiserver.selectors import SelectorError, field_matcher, label_matcher
from tests.utils.kube_apiserver.store import Conflict, Store, clone
from tests.utils.kube_apiserver.tls import ServingCert

STATUS_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                  405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
                  422: "Invalid", 500: "InternalError", 503: "ServiceUnavailable"}
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = {"application/json-patch+json": "json", "application/merge-patch+json": "merge",
               "application/strategic-merge-patch+json": "strategic"}


def status_body(code: int, message: str, *, reason: str | None = None,
                details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason or STATUS_REASONS.get(code, "Unknown"), "code": code}
    if details is not None:
        body["details"] = details
    return body


class ApiError(Exception):
    def __init__(self, code: int, message: str, *, reason: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.body = status_body(code, message, reason=reason, details=details)
        self.code = code


@dataclass(frozen=True)
class Route:
    resource: ResourceType
    namespace: str | None  # None: across namespaces (or cluster-scoped)
    name: str | None
    subresource: str | None


@dataclass
class Fault:
    method: str
    plural: str
    code: int
    message: str | None


class KubeApiServer:
    def __init__(self, store: Store, control: ControlPlane, *, tokens: dict[str, User], cert: ServingCert | None,
                 bookmark_interval_s: float = 60.0, default_watch_timeout_s: int = 1800) -> None:
        self.store = store
        self.control = control
        self.tokens = dict(tokens)
        self.cert = cert
        self.bookmark_interval_s = bookmark_interval_s
        self.default_watch_timeout_s = default_watch_timeout_s
        self.requests: Counter[tuple[str, str]] = Counter()  # (verb, plural) -> count
        self.port = 0
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._faults: list[Fault] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.cert else 'http'}://127.0.0.1:{self.port}"

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        httpd = _HttpServer(("127.0.0.1", self.port), _Handler)
        httpd.api = self
        if self.cert is not None:
            httpd.socket = self.cert.server_context().wrap_socket(httpd.socket, server_side=True,
                                                                  do_handshake_on_connect=False)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="kube-stand-in-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Go away: stop listening and cut every open connection, watches included."""
        self._stopping.set()
        with self.store.cond:
            self.store.cond.notify_all()
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        for conn in list(httpd.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def fail_next(self, method: str, plural: str, code: int, message: str | None = None) -> None:
        """The next `method` on `plural` fails with `code` (a Status body), as a busy real server can."""
        with self._lock:
            self._faults.append(Fault(method.upper(), plural, code, message))

    def take_fault(self, method: str, plural: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.plural == plural:
                    self._faults.remove(fault)
                    return fault
        return None


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    api: KubeApiServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.connections: set[socket.socket] = set()
        super().__init__(*args, **kwargs)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.request)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError):
                self.close_connection = True
            self.request.settimeout(None)

    def finish(self) -> None:
        self.server.connections.discard(self.request)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read the request counters, not an access log

    @property
    def api(self) -> KubeApiServer:
        return self.server.api

    # --- dispatch ------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            user = self._authenticate()
            document = self._discovery(parts.path)
            if document is not None:
                self._send(200, document)
                return
            route = _route(parts.path)
            self._handle(method, route, query, body, user)
        except ApiError as err:
            self._send(err.code, err.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authenticate(self) -> User:
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""  # the scheme is case-insensitive, as the server's
        user = self.api.tokens.get(token) if token else None
        if user is None:
            raise ApiError(401, "Unauthorized")
        return user

    def _discovery(self, path: str) -> dict[str, Any] | None:
        path = path.rstrip("/")
        if path == "/version":
            return {"major": "1", "minor": "33", "gitVersion": "v1.33.1", "platform": "linux/arm64"}
        if path == "/api":
            return resources.api_versions()
        if path == "/apis":
            return resources.api_group_list()
        segments = path.strip("/").split("/")
        if segments[:1] == ["api"] and len(segments) == 2:
            return resources.api_resource_list("", segments[1])
        if segments[:1] == ["apis"] and len(segments) == 3:
            return resources.api_resource_list(segments[1], segments[2])
        return None

    def _handle(self, method: str, route: Route, query: dict[str, str], body: bytes, user: User) -> None:
        rt = route.resource
        watching = method == "GET" and query.get("watch") in ("true", "1")
        verb = {"GET": "watch" if watching else ("get" if route.name else "list"), "PATCH": "patch",
                "DELETE": "delete", "POST": "create", "PUT": "update"}[method]
        self.api.requests[(verb, rt.plural)] += 1
        if not allowed(self.api.store, user, verb, rt, route.namespace, route.name):
            raise ApiError(403, forbidden_message(user, verb, rt, route.namespace, route.name),
                           details={"name": route.name, "group": rt.group, "kind": rt.plural} if route.name
                           else {"group": rt.group, "kind": rt.plural})
        fault = self.api.take_fault(method, rt.plural)
        if fault is not None:
            raise ApiError(fault.code, fault.message or _fault_message(fault.code, rt, route.name),
                           details={"name": route.name, "group": rt.group, "kind": rt.plural})
        if method == "GET" and route.name:
            self._send(200, _with_type(self._existing(route), rt))
        elif watching:
            self._watch(route, query)
        elif method == "GET":
            self._list(route, query)
        elif method == "PATCH" and route.name and not route.subresource and self._content_type() == APPLY_PATCH:
            self._apply(route, query, body, user)
        elif method == "PATCH" and route.name and not route.subresource:
            self._patch(route, query, body)
        elif method == "DELETE" and route.name:
            self._delete(route)
        else:
            raise ApiError(405, f"the server does not allow this method on the requested resource ({method})")

    def _existing(self, route: Route) -> dict[str, Any]:
        obj = self.api.store.get(route.resource, route.namespace or "", route.name or "")
        if obj is None:
            rt = route.resource
            raise ApiError(404, f'{rt.group_resource} "{route.name}" not found',
                           details={"name": route.name, "group": rt.group, "kind": rt.plural})
        return obj

    # --- list ----------------------------------------------------------------------------------------

    def _list(self, route: Route, query: dict[str, str]) -> None:
        rt, store = route.resource, self.api.store
        token = query.get("continue")
        if token:
            snapshot = store.take_snapshot(token)
            if snapshot is None:
                raise ApiError(410, "The provided continue parameter is too old to display a consistent list "
                               "result. You can start a new list without the continue parameter.")
            rv = _decode_token(token)["rv"]
            items = snapshot
        else:
            matches = self._matchers(rt, query)
            with store.cond:
                rv = store.rv
                items = [json.dumps(_list_item(o, rt)).encode() for o in store.items(rt, route.namespace)
                         if all(m(o) for m in matches)]
        limit = int(query.get("limit") or 0)
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and len(items) > limit:
            rest, items = items[limit:], items[:limit]
            next_token = base64.urlsafe_b64encode(json.dumps({"rv": rv, "id": uuid.uuid4().hex}).encode()).decode()
            store.remember_snapshot(next_token, rest)
            meta.update({"continue": next_token, "remainingItemCount": len(rest)})
        head = json.dumps({"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta})[:-1]
        self._send_bytes(200, head.encode() + b', "items": [' + b",".join(items) + b"]}")

    def _matchers(self, rt: ResourceType, query: dict[str, str]) -> list[Any]:
        try:
            return [label_matcher(query.get("labelSelector")), field_matcher(query.get("fieldSelector"), rt)]
        except SelectorError as err:
            raise ApiError(400, str(err)) from None

    # --- watch ---------------------------------------------------------------------------------------

    def _watch(self, route: Route, query: dict[str, str]) -> None:
        rt, store, api = route.resource, self.api.store, self.api
        matches = self._matchers(rt, query)
        raw_rv = query.get("resourceVersion", "")
        if raw_rv and not raw_rv.isdigit():
            raise ApiError(400, f'resourceVersion: Invalid value: "{raw_rv}": must be a non-negative integer')
        timeout = int(query.get("timeoutSeconds") or api.default_watch_timeout_s)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        # The watch-list protocol (client-go's WatchListClient, on in kubectl 1.37): the current state as
        # ADDED events, then a BOOKMARK annotated k8s.io/initial-events-end, then the changes.
        initial_events = query.get("sendInitialEvents") in ("true", "1")
        if initial_events and (query.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
            raise ApiError(422, "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the "
                           "WatchList feature gate is enabled and resourceVersionMatch is NotOlderThan with "
                           "allowWatchBookmarks")
        replay = initial_events or raw_rv in ("", "0")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True

        def visible(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            namespace = (obj.get("metadata") or {}).get("namespace")
            return (route.namespace is None or namespace == route.namespace) and all(m(obj) for m in matches)

        try:
            with store.cond:  # never write to the socket while holding the store's lock
                pos = store.rv
                initial = [_with_type(o, rt) for o in store.items(rt, route.namespace) if visible(o)] if replay else []
                expired = not replay and store.too_old(int(raw_rv))
                oldest = store.oldest_rv
            if replay:
                for obj in initial:
                    self._event("ADDED", obj)
                if initial_events:
                    self._event("BOOKMARK", _bookmark(rt, pos, initial_events_end=True))
            elif expired:
                self._event("ERROR", status_body(410, f"too old resource version: {raw_rv} ({oldest + 1})"))
                self._end_chunks()
                return
            else:
                pos = int(raw_rv)
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + api.bookmark_interval_s
            while not api.stopping and time.monotonic() < deadline:
                with store.cond:
                    if not store.changes_after(pos):
                        store.cond.wait(max(0.0, min(deadline, next_bookmark) - time.monotonic()))
                    expired, oldest = store.too_old(pos), store.oldest_rv
                    changes, pos_after = store.changes_after(pos), store.rv
                if expired:  # the change log moved past this watcher (compaction)
                    self._event("ERROR", status_body(410, f"too old resource version: {pos} ({oldest + 1})"))
                    break
                for change in changes:
                    if change.resource == rt:
                        kind = _transition(change.type, visible(change.old), visible(change.obj))
                        if kind:
                            self._event(kind, _with_type(change.obj, rt))
                pos = pos_after
                if bookmarks and time.monotonic() >= next_bookmark:
                    self._event("BOOKMARK", _bookmark(rt, pos))
                    next_bookmark = time.monotonic() + api.bookmark_interval_s
            if not api.stopping:
                self._end_chunks()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return

    def _event(self, kind: str, obj: dict[str, Any]) -> None:
        line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- writes --------------------------------------------------------------------------------------

    def _content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    def _patch(self, route: Route, query: dict[str, str], body: bytes) -> None:
        rt, store = route.resource, self.api.store
        kind = PATCH_TYPES.get(self._content_type())
        if kind is None or (kind == "strategic" and not rt.builtin):
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                           f"{', '.join(t for t, k in PATCH_TYPES.items() if rt.builtin or k != 'strategic')}")
        try:
            patch = json.loads(body or b"null")
        except ValueError as err:
            raise ApiError(400, f"error decoding patch: {err}") from None
        with store.cond:
            current = self._existing(route)
            try:
                if kind == "json":
                    patched = patches.json_patch(current, patch)
                elif kind == "merge":
                    patched = patches.merge_patch(current, patch)
                else:
                    patched = patches.strategic_merge_patch(current, patch)
            except patches.PatchError as err:
                raise ApiError(422 if kind == "json" else 400, str(err)) from None
            if not isinstance(patched, dict) or (patched.get("metadata") or {}).get("name") != route.name:
                raise ApiError(422, f'{rt.kind} "{route.name}" is invalid: metadata.name: Invalid value: the name '
                               "of the object and the name in the URL do not match")
            expected = (patched.get("metadata") or {}).get("resourceVersion")
            patched["status"] = current.get("status")  # the status subresource is written elsewhere
            if patched["status"] is None:
                patched.pop("status")
            if query.get("dryRun") == "All":
                if expected and expected != current["metadata"]["resourceVersion"]:
                    raise ApiError(409, _conflict(rt, route.name), details={"name": route.name, "group": rt.group,
                                                                          "kind": rt.plural})
                self._send(200, _with_type(patched, rt))
                return
            try:
                updated = store.update(patched, expect_rv=expected, manager=query.get("fieldManager") or "unknown")
            except Conflict as err:
                raise ApiError(409, str(err), details={"name": route.name, "group": rt.group, "kind": rt.plural}) from None
        if rt == DEPLOYMENT:
            self.api.control.touch(route.namespace or "", route.name or "")
        self._send(200, _with_type(updated, rt))

    def _apply(self, route: Route, query: dict[str, str], body: bytes, user: User) -> None:
        """Server-side apply of one object (see the module docstring for what is and is not modelled)."""
        rt, store = route.resource, self.api.store
        namespace, name = route.namespace or "", route.name or ""
        details = {"name": name, "group": rt.group, "kind": rt.plural}
        if not query.get("fieldManager"):
            raise ApiError(422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
                           "for apply patch", details=details)
        try:
            applied = yaml.safe_load(body or b"")
        except yaml.YAMLError as err:
            raise ApiError(400, f"error decoding YAML: {err}") from None
        if not isinstance(applied, dict):
            raise ApiError(400, "error decoding YAML: the applied configuration is not an object")
        if (applied.get("apiVersion"), applied.get("kind")) != (rt.api_version, rt.kind):
            raise ApiError(400, f"the API version in the data ({applied.get('apiVersion')}) and kind "
                           f"({applied.get('kind')}) do not match the request ({rt.api_version}, {rt.kind})")
        meta = applied.setdefault("metadata", {})
        if meta.get("name") != name or (rt.namespaced and meta.setdefault("namespace", namespace) != namespace):
            raise ApiError(422, f'{rt.kind} "{name}" is invalid: metadata: Invalid value: the name or namespace '
                           "of the object and those in the URL do not match", details=details)
        applied.pop("status", None)  # the status subresource is written by controllers, never applied
        dry_run = query.get("dryRun") == "All"
        manager = query["fieldManager"]
        with store.cond:
            current = store.get(rt, namespace, name)
            if current is None:
                if not allowed(store, user, "create", rt, route.namespace, None):
                    raise ApiError(403, forbidden_message(user, "create", rt, route.namespace, None), details=details)
                new = apply_deployment_defaults(clone(applied)) if rt == DEPLOYMENT else clone(applied)
                if dry_run:
                    self._send(201, _with_type(new, rt))
                    return
                try:
                    created = store.create(new, manager=manager)
                except Conflict as err:
                    raise ApiError(409, str(err), details=details) from None
                code, result = 201, created
            else:
                try:
                    merged = patches.strategic_merge_patch(current, applied)
                except patches.PatchError as err:
                    raise ApiError(400, str(err)) from None
                if current.get("status") is not None:
                    merged["status"] = current["status"]
                if merged == current or dry_run:
                    self._send(200, _with_type(merged, rt))
                    return
                code, result = 200, store.update(merged, manager=manager)
        if rt == DEPLOYMENT:
            self.api.control.touch(namespace, name)
        self._send(code, _with_type(result, rt))

    def _delete(self, route: Route) -> None:
        rt, store = route.resource, self.api.store
        obj = self._existing(route)
        store.delete(rt, route.namespace or "", route.name or "")
        if rt == POD:
            rs_name = next((r["name"] for r in obj["metadata"].get("ownerReferences") or [] if r.get("kind") == "ReplicaSet"), None)
            rs = store.get(REPLICASET, route.namespace or "", rs_name) if rs_name else None
            dep = next((r["name"] for r in (rs or {}).get("metadata", {}).get("ownerReferences") or []), None)
            if dep:
                self.api.control.touch(route.namespace or "", dep)
        self._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": route.name, "group": rt.group, "kind": rt.plural,
                                     "uid": obj["metadata"].get("uid")}})

    # --- responses -----------------------------------------------------------------------------------

    def _send(self, code: int, document: dict[str, Any]) -> None:
        self._send_bytes(code, json.dumps(document).encode())

    def _send_bytes(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)


def _route(path: str) -> Route:
    segments = [s for s in path.split("/") if s]
    if segments[:1] == ["api"] and len(segments) >= 2:
        group, version, rest = "", segments[1], segments[2:]
    elif segments[:1] == ["apis"] and len(segments) >= 3:
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise ApiError(404, "the server could not find the requested resource", details={})
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest:
        raise ApiError(404, "the server could not find the requested resource", details={})
    rt = resources.BY_PATH.get((group, version, rest[0]))
    if rt is None or len(rest) > 3:
        raise ApiError(404, "the server could not find the requested resource", details={})
    if not rt.namespaced and namespace is not None:
        raise ApiError(404, "the server could not find the requested resource", details={})
    return Route(rt, namespace, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)


def _with_type(obj: dict[str, Any], rt: ResourceType) -> dict[str, Any]:
    return {"kind": rt.kind, "apiVersion": rt.api_version, **{k: v for k, v in obj.items()
                                                              if k not in ("kind", "apiVersion")}}


def _list_item(obj: dict[str, Any], rt: ResourceType) -> dict[str, Any]:
    """Built-in list items come without kind/apiVersion (typed conversion drops them); CRs keep theirs."""
    if rt.builtin:
        return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    return _with_type(obj, rt)


def _bookmark(rt: ResourceType, rv: int, *, initial_events_end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_events_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}


def _transition(change: str, was_visible: bool, is_visible: bool) -> str | None:
    """What a watcher with a selector sees: objects entering it are ADDED, leaving it DELETED."""
    if change == "DELETED":
        return "DELETED" if was_visible else None
    if change == "ADDED":
        return "ADDED" if is_visible else None
    if was_visible and is_visible:
        return "MODIFIED"
    if is_visible:
        return "ADDED"
    return "DELETED" if was_visible else None


def _decode_token(token: str) -> dict[str, Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        raise ApiError(400, "continue key is not valid: illegal base64 data") from None


def _conflict(rt: ResourceType, name: str | None) -> str:
    return (f'Operation cannot be fulfilled on {rt.group_resource} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again")


def _fault_message(code: int, rt: ResourceType, name: str | None) -> str:
    if code == 409:
        return _conflict(rt, name)
    if code == 503:
        return "the server is currently unable to handle the request"
    return STATUS_REASONS.get(code, "error")
