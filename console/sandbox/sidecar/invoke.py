"""Service invocation: resolve an app-id through the supervisor's registry and call its HTTP port.

daprd resolves the target (Kubernetes DNS in the cluster, mDNS self-hosted), forwards to the
target sidecar, which calls its app; resiliency `targets.apps.<app-id>` wraps the whole call
(dapr/dapr pkg/api/http/directmessaging.go). Here the registry file the supervisor keeps current
is the name resolution, and we call the target app's port directly. Answers with status 200-399
are passed back as they are; other statuses are failures for the retry policy and, once it gives
up, the callee's last status, headers and body go back to the caller unchanged. Transport
failures become ERR_DIRECT_INVOKE ("failed to invoke, id: <id>, err: ...").
The callee gets the headers daprd adds on the way (pkg/messaging/direct_messaging.go):
`dapr-caller-app-id`, `dapr-callee-app-id` and `dapr-caller-namespace` (set by daprd, whatever the
caller sent), and `X-Forwarded-For` / `X-Forwarded-Host` / `Forwarded` (appended to the caller's):
the host address is the sidecar's, 127.0.0.1 here (daprd's pod IP; DAPR_HOST_IP overrides it in
both), the host name the machine's (the pod's). And the traceparent daprd's HTTP channel gives the
app (pkg/messaging/v1/util.go InternalMetadataToHTTPHeader): an HTTP caller's own traceparent as is,
or daprd's new span when it sent none; for a gRPC caller always daprd's span, a child of the
caller's (same trace id, a new span id).
Docs: https://docs.dapr.io/reference/api/service_invocation_api/
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from console.sandbox.sidecar import errors
from console.sandbox.sidecar.callscope import CallScope
from console.sandbox.sidecar.cloudevents import child_traceparent
from console.sandbox.sidecar.loopback import AppUnreachable, LoopbackHTTP
from console.sandbox.sidecar.policies import TRUST_DOMAIN, Policies
from console.sandbox.sidecar.resiliency import BreakerOpenError, Resiliency, StatusError

log = logging.getLogger(__name__)

# Headers that describe one hop, never forwarded (RFC 7230 6.1), plus daprd's own routing headers.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length", "dapr-app-id", "dapr-api-token"}
# Set by daprd from its own identity: a caller cannot choose them.
CALLER_HEADERS = ("dapr-caller-app-id", "dapr-callee-app-id", "dapr-caller-namespace")
DEFAULT_TIMEOUT_S = 60.0


def with_trace(headers: list[tuple[str, str]], *, from_grpc: bool) -> list[tuple[str, str]]:
    """The caller's headers with the traceparent daprd hands the callee (see the module docstring)."""
    given = next((v for k, v in headers if k.lower() == "traceparent"), None)
    if given and not from_grpc:
        return headers
    return [*((k, v) for k, v in headers if k.lower() != "traceparent"), ("traceparent", child_traceparent(given))]


def _forwarded(caller: str, callee: str, namespace: str) -> list[tuple[str, str]]:
    """addCallerAndCalleeAppIDHeaderToMetadata and addForwardedHeadersToMetadata."""
    address, host = os.environ.get("DAPR_HOST_IP") or "127.0.0.1", socket.gethostname()
    quoted = f'"[{address}]"' if ":" in address else address  # RFC 7239: IPv6 quoted and bracketed
    return [("dapr-caller-app-id", caller), ("dapr-callee-app-id", callee), ("dapr-caller-namespace", namespace),
            ("X-Forwarded-For", address), ("X-Forwarded-Host", host),
            ("Forwarded", f"for={quoted};by={quoted};host={host}")]


@dataclass(frozen=True)
class Endpoint:
    app_port: int
    dapr_http_port: int | None = None
    dapr_grpc_port: int | None = None


class Registry:
    """The supervisor's JSON registry, re-read whenever the file changes (name resolution)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._entries: dict[str, Endpoint] = {}
        self._lock = threading.Lock()

    def resolve(self, app_id: str) -> Endpoint | None:
        with self._lock:
            self._refresh()
            return self._entries.get(app_id)

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
        except OSError:
            self._entries, self._stamp = {}, None
            return
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._stamp:
            return
        try:
            raw = json.loads(self.path.read_text() or "{}")
            self._entries = {
                str(app): Endpoint(int(v["app_port"]), v.get("dapr_http_port"), v.get("dapr_grpc_port"))
                for app, v in raw.items() if isinstance(v, dict) and v.get("app_port")
            }
            self._stamp = stamp
        except (OSError, ValueError, KeyError, TypeError) as exc:  # half-written file: keep the old view
            log.warning("cannot read registry", extra={"path": str(self.path), "error": str(exc)})


class AccessDenied(Exception):
    """The callee's access control policy refused this caller/operation/verb."""


@dataclass
class InvokeResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    content_type: str


class Invoker:
    """Calls another app's HTTP port under that app's resiliency policy."""

    def __init__(self, registry: Registry, resiliency: Resiliency, caller: str = "", namespace: str = "",
                 policies: Policies | None = None) -> None:
        self.registry = registry
        self.resiliency = resiliency
        self.caller, self.namespace = caller, namespace
        self.policies = policies or Policies()
        self._http = LoopbackHTTP(timeout_s=DEFAULT_TIMEOUT_S)

    def invoke(self, app_id: str, method: str, verb: str, query: str, headers: list[tuple[str, str]],
               body: bytes, success_max: int = 399, call: CallScope | None = None) -> InvokeResult:
        """Call `method` on `app_id`; a failing status after retries comes back as the result.

        `success_max` is 399 for the HTTP API and 299 for gRPC InvokeService (where 3xx is an error).
        `call` (gRPC callers) ends the retries with the caller's deadline or cancellation, as daprd.
        Raises DaprError (ERR_DIRECT_INVOKE) when the app cannot be reached at all.
        """
        policy = self.resiliency.app_policy(app_id)
        fwd = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in CALLER_HEADERS]
        fwd += _forwarded(self.caller, app_id, self.namespace)

        operation = method.split("?", 1)[0]

        def attempt(timeout: float | None) -> InvokeResult:
            endpoint = self.registry.resolve(app_id)
            if endpoint is None:
                raise LookupError(f"couldn't find service: {app_id}")
            if not self.policies.may_invoke(self.caller, self.namespace, operation, verb):
                raise AccessDenied(
                    "rpc error: code = PermissionDenied desc = access control policy has denied access to id: "
                    f"spiffe://{TRUST_DOMAIN}/ns/{self.namespace}/{self.caller} operation: {operation} "
                    f"verb: {verb.upper()}")
            target = f"/{method.lstrip('/')}"
            if query:
                target += f"?{query}"
            if call is not None:
                timeout = call.bound(timeout)
            resp = self._http.request(endpoint.app_port, verb, target, body=body, headers=fwd,
                                      timeout_s=timeout or DEFAULT_TIMEOUT_S)
            result = InvokeResult(resp.status_code, [(k.lower(), v) for k, v in resp.headers], resp.content,
                                  resp.header("content-type") or "")
            if not 200 <= resp.status_code <= success_max:
                raise StatusError(resp.status_code, f"status {resp.status_code}", result)
            return result

        try:
            return policy.run(attempt, stop=call)
        except StatusError as exc:
            return exc.result
        except AppUnreachable as exc:
            if exc.timed_out:
                raise errors.direct_invoke(app_id, "context deadline exceeded") from None
            raise errors.direct_invoke(app_id, _describe(exc)) from None
        except AccessDenied as exc:
            log.warning("service invocation denied by the access control policy",
                        extra={"target": app_id, "operation": operation, "verb": verb.upper()})
            raise errors.direct_invoke(app_id, str(exc), http_status=403) from None
        except (LookupError, BreakerOpenError) as exc:
            raise errors.direct_invoke(app_id, _describe(exc)) from None

    def close(self) -> None:
        self._http.close()


def _describe(exc: Exception) -> str:
    if isinstance(exc, AppUnreachable) and exc.refused:
        return f"dial tcp: connect: connection refused ({exc})"
    return str(exc) or type(exc).__name__
