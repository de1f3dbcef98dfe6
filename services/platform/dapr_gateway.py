"""The one place a service talks to its Dapr sidecar, through the official `dapr` SDK.

Why a wrapper at all: every call must carry the correlation id and traceparent, be timed
in Prometheus, and fail with one of two exceptions a caller can act on, `DaprUnavailable`
(retry later) or `DaprCallError` (the sidecar answered no). The building blocks go through the
SDK's asyncio gRPC client (`DaprGrpcClientAsync`), one per event loop, on the loop itself: the
synchronous client needed a worker thread per call, and the thread hand-offs and its interceptor
chain cost the notification service about 3 ms of CPU per reminder (three calls). The client is
created lazily, after the sidecar answers its health check, because the SDK otherwise waits for
the sidecar for up to a minute. Only `get_secret_blocking`, for start-up, uses the synchronous client.

Health probes and service invocation go over Dapr's HTTP API on one kept-alive client per event
loop, not through the SDK: the SDK's HTTP invocation opens a new event loop and a new aiohttp
session (a new connection) for every call, and the probe built a new client each time; under load
that was a large part of what an invocation cost the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import grpc.aio
import httpx
from dapr.aio.clients.grpc.client import DaprGrpcClientAsync
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from dapr.clients.grpc._jobs import Job
from dapr.clients.grpc._state import Concurrency, StateOptions
from dapr.conf import settings as dapr_settings
from google.protobuf.any_pb2 import Any as GrpcAny
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

from services.platform import correlation, metrics
from services.platform.settings import ServiceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

_UNAVAILABLE_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class DaprUnavailable(RuntimeError):
    """The sidecar (or what it fronts: Kafka, the state store) cannot be reached now."""


class DaprCallError(RuntimeError):
    """The sidecar answered with an error; `code` is the gRPC code or HTTP status."""

    def __init__(self, message: str, code: str | int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class InvokeResult:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class StateEntry:
    key: str
    value: bytes
    etag: str | None


class _TraceMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the current correlation id and traceparent to every gRPC call's metadata."""

    def _with_trace(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = (*(details.metadata or ()), *correlation.outgoing_headers().items())
        return _CallDetails(
            details.method, details.timeout, metadata, details.credentials,
            getattr(details, "wait_for_ready", None), getattr(details, "compression", None),
        )

    # The stubs' call objects (_CallFuture, _CallIterator) are private to them: Any here.
    def intercept_unary_unary(self, continuation: Callable[[grpc.ClientCallDetails, Any], Any],
                              details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._with_trace(details), request)

    def intercept_unary_stream(self, continuation: Callable[[grpc.ClientCallDetails, Any], Any],
                               details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._with_trace(details), request)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method: str, timeout: float | None, metadata: tuple[tuple[str, str | bytes], ...],
                 credentials: grpc.CallCredentials | None, wait_for_ready: bool | None,
                 compression: grpc.Compression | None) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


class _AsyncTraceMetadata(grpc.aio.UnaryUnaryClientInterceptor):
    """The asyncio client's twin of _TraceMetadata: the call runs in the caller's task, so the
    correlation bound there is the current one. It also gives every call the gateway's deadline: the
    SDK's asyncio client, unlike its synchronous one, sends most calls (publish_event among them) with
    none, and with Kafka down daprd's outbound resiliency can hold a publish for minutes."""

    def __init__(self, deadline_s: float | None) -> None:
        self.deadline_s = deadline_s

    async def intercept_unary_unary(self, continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
                                    details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *correlation.outgoing_headers().items())
        timeout = details.timeout if details.timeout is not None else self.deadline_s
        return await continuation(grpc.aio.ClientCallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready), request)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every health probe of the sidecar.

    httpx builds a fresh default context, loading the whole CA bundle, for each client it creates:
    about 27 ms of CPU. Done per `/readyz` on the event loop of a loaded backend, that stalled every
    request in flight for hundreds of milliseconds. The sidecar speaks plain HTTP on loopback, so the
    context is never used for a handshake; it only has to exist.
    """
    return ssl.create_default_context()


class DaprGateway:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._client: DaprClient | None = None
        self._lock = threading.Lock()
        self._base_url = f"http://127.0.0.1:{settings.dapr_http_port}"
        # The SDK reads these module-level settings for its HTTP calls and health wait. Its `Settings`
        # declares no attributes (it resolves them in __getattr__), so they are assigned by name.
        sdk_settings: dict[str, object] = {
            "DAPR_HTTP_PORT": settings.dapr_http_port,
            "DAPR_GRPC_PORT": settings.dapr_grpc_port,
            "DAPR_HEALTH_TIMEOUT": settings.dapr_timeout_s,
            # A deadline on every gRPC call: with Kafka down, daprd's outbound resiliency can hold a
            # publish for minutes; callers (the outbox relay) must get control back and retry themselves.
            "DAPR_API_TIMEOUT_SECONDS": settings.dapr_timeout_s,
        }
        for name, value in sdk_settings.items():
            setattr(dapr_settings, name, value)
        self._http_client: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._grpc_client: DaprGrpcClientAsync | None = None
        self._grpc_loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # -- health -----------------------------------------------------------------------
    async def ready(self, outbound: bool = False) -> bool:
        """True when the sidecar answers its health endpoint (as kubelet would probe it)."""
        path = "/v1.0/healthz/outbound" if outbound else "/v1.0/healthz"
        try:
            response = await self._http().get(path, timeout=1.0)
            return 200 <= response.status_code < 300
        except httpx.HTTPError:
            return False

    # -- building blocks --------------------------------------------------------------
    async def publish(self, topic: str, event: bytes | str, *, partition_key: str | None = None) -> None:
        """Publish a serialised CloudEvent (ours, built by `events.build_event`) exactly as it is;
        daprd keeps its id, type and source and adds its own fields. Events with the same partition
        key (the task id) stay in order on one Kafka partition."""
        metadata = {"partitionKey": partition_key} if partition_key else {}
        await self._call(
            "publish",
            lambda c: c.publish_event(
                pubsub_name=self.settings.pubsub_name,
                topic_name=topic,
                data=event,
                data_content_type="application/cloudevents+json",
                publish_metadata=metadata,
            ),
        )
        metrics.EVENTS_PUBLISHED.labels(self.settings.service_name, topic).inc()

    async def invoke(
        self, app_id: str, method: str, *, verb: str = "GET", body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> InvokeResult:
        """Service invocation over Dapr's HTTP API (as the SDK's HTTP invocation sends it); a non-2xx
        answer from the callee is returned, not raised. daprd's own failures (an ERR_DIRECT_INVOKE
        error code: callee unknown or unreachable) and no answer in time are `DaprUnavailable`."""
        data = b"" if body is None else json.dumps(body).encode()
        request_headers = {"content-type": "application/json", **correlation.outgoing_headers(), **(headers or {})}
        if dapr_settings.DAPR_API_TOKEN:
            request_headers["dapr-api-token"] = str(dapr_settings.DAPR_API_TOKEN)
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self._http().request(
                verb, f"/v1.0/invoke/{app_id}/method/{method.lstrip('/')}", content=data, headers=request_headers,
                timeout=self.settings.dapr_timeout_s or 1.0)
            if not 200 <= response.status_code < 300:
                code = _dapr_error_code(response)
                if code.startswith("ERR_DIRECT_INVOKE"):
                    raise DaprUnavailable(f"invoke {app_id}/{method}: {code}")
            outcome = "ok"
            return InvokeResult(response.status_code, response.content)
        except httpx.TimeoutException as exc:
            raise DaprUnavailable(f"invoke {app_id}/{method}: no answer within {self.settings.dapr_timeout_s}s") from exc
        except httpx.HTTPError as exc:
            raise DaprUnavailable(f"invoke {app_id}/{method}: {type(exc).__name__}: {exc}") from exc
        finally:
            metrics.DAPR_CALLS.labels(self.settings.service_name, "invoke", outcome).observe(
                time.perf_counter() - started)

    async def get_state(self, key: str) -> StateEntry | None:
        resp = await self._call("state.get", lambda c: c.get_state(self.settings.statestore_name, key))
        if not resp.data:
            return None
        return StateEntry(key, bytes(resp.data), resp.etag or None)

    async def save_state(self, key: str, value: bytes | str, *, etag: str | None = None,
                         first_write: bool = False) -> None:
        """Save; with `first_write`, a missing or stale etag fails instead of overwriting."""
        options = StateOptions(concurrency=Concurrency.first_write) if first_write else None
        await self._call(
            "state.save",
            lambda c: c.save_state(self.settings.statestore_name, key, value, etag=etag, options=options),
        )

    async def delete_state(self, key: str, *, etag: str | None = None) -> None:
        await self._call("state.delete", lambda c: c.delete_state(self.settings.statestore_name, key, etag=etag))

    async def get_secret(self, name: str, key: str) -> str:
        resp = await self._call("secret.get", lambda c: c.get_secret(self.settings.secretstore_name, name))
        if key not in resp.secret:
            raise DaprCallError(f"secret {name!r} has no key {key!r}", "NOT_FOUND")
        return str(resp.secret[key])

    def get_secret_blocking(self, name: str, key: str) -> str:
        """For start-up code that runs before the event loop serves requests."""
        resp = self._sync_call("secret.get", lambda c: c.get_secret(self.settings.secretstore_name, name))
        if key not in resp.secret:
            raise DaprCallError(f"secret {name!r} has no key {key!r}", "NOT_FOUND")
        return str(resp.secret[key])

    async def schedule_job(self, name: str, *, due_time: str, data: dict[str, Any],
                           overwrite: bool = True) -> None:
        """A one-shot job; daprd calls POST /job/<name> on the app with `data` at due_time.

        The data is packed as a `google.protobuf.Value`: for HTTP apps daprd (1.14.4+, dapr/dapr#8083)
        renders exactly that type as the JSON body; any other type arrives as raw protobuf bytes.
        """
        payload = GrpcAny()
        payload.Pack(ParseDict(data, Value()))
        job = Job(name=name, due_time=due_time, data=payload)
        await self._call("job.schedule", lambda c: c.schedule_job(job, overwrite=overwrite))

    async def get_job(self, name: str) -> dict[str, Any] | None:
        """The data of the pending job `name` (as `schedule_job` packed it), or None when there is none.

        daprd wraps the Scheduler's NotFound for a job that is not there (or has fired) in an
        INTERNAL "failed to get job due to: ... code = NotFound ..."; a plain NOT_FOUND is read
        the same way.
        """
        try:
            job = await self._call("job.get", lambda c: c.get_job(name))
        except DaprCallError as exc:
            if exc.code == "NOT_FOUND" or "NotFound" in str(exc):
                return None
            raise
        value = Value()
        if job.data is None or not job.data.Unpack(value):
            return {}  # a job someone else scheduled, with data of another type
        data = MessageToDict(value)
        return data if isinstance(data, dict) else {}

    async def delete_job(self, name: str) -> None:
        await self._call("job.delete", lambda c: c.delete_job(name))

    def close(self) -> None:
        self._drop_client()

    async def aclose(self) -> None:
        """Close the event loop's clients too (they belong to the loop that is shutting down)."""
        client, self._http_client, self._http_loop = self._http_client, None, None
        if client is not None:
            await client.aclose()
        await self._drop_grpc()
        self.close()

    async def _drop_grpc(self) -> None:
        """Forget the asyncio channel, for the same reason as `_drop_client`, and close it."""
        channel, self._grpc_client, self._grpc_loop = self._grpc_client, None, None
        if channel is not None:
            await channel.close()

    def _forget_grpc(self) -> None:
        """`_drop_grpc` from where it cannot be awaited: the close runs as a task of the channel's loop."""
        channel, self._grpc_client, self._grpc_loop = self._grpc_client, None, None
        if channel is not None:
            closing = asyncio.get_running_loop().create_task(channel.close())
            self._closing.add(closing)  # a task nobody references may be collected before it runs
            closing.add_done_callback(self._closing.discard)

    def _drop_client(self) -> None:
        """Forget the channel: after a sidecar restart gRPC would sit in reconnect backoff
        (up to two minutes); the next call probes health and opens a fresh channel instead."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- plumbing ---------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        """The kept-alive HTTP client to the sidecar, one per event loop (a client's pooled
        connections belong to the loop that opened them; tests run one loop after another)."""
        loop = asyncio.get_running_loop()
        if self._http_client is None or self._http_loop is not loop:
            # Probes come every 5 s: httpx's default 5 s keep-alive expiry closed the connection just
            # before each one, and a new connection costs more than the probe.
            self._http_client = httpx.AsyncClient(base_url=self._base_url, verify=_tls_context(), trust_env=False,
                                                  limits=httpx.Limits(keepalive_expiry=60.0))
            self._http_loop = loop
        return self._http_client

    async def _grpc(self) -> DaprGrpcClientAsync:
        """The SDK's asyncio gRPC client, one per event loop (its channel belongs to the loop)."""
        loop = asyncio.get_running_loop()
        if self._grpc_client is None or self._grpc_loop is not loop:
            if not await self.ready(outbound=True):
                raise DaprUnavailable(f"Dapr sidecar not ready on port {self.settings.dapr_http_port}")
            try:
                # Its constructor waits for the sidecar's health (a blocking request, answered at once:
                # the sidecar has just answered ours).
                self._grpc_client = DaprGrpcClientAsync(address=f"127.0.0.1:{self.settings.dapr_grpc_port}",
                                                        interceptors=[_AsyncTraceMetadata(self.settings.dapr_timeout_s)])
            except Exception as exc:  # the SDK raises a bare Exception on a health time-out
                raise DaprUnavailable(f"Dapr sidecar not reachable: {exc}") from exc
            self._grpc_loop = loop
        return self._grpc_client

    def _ensure_client(self) -> DaprClient:
        with self._lock:
            if self._client is None:
                # Probe first: the SDK's own wait prints to stdout (breaking JSON logs) and blocks.
                try:
                    probe = httpx.get(self._base_url + "/v1.0/healthz/outbound", timeout=1.0,
                                      verify=_tls_context())
                    healthy = 200 <= probe.status_code < 300
                except httpx.HTTPError:
                    healthy = False
                if not healthy:
                    raise DaprUnavailable(f"Dapr sidecar not ready on port {self.settings.dapr_http_port}")
                try:
                    self._client = DaprClient(
                        address=f"127.0.0.1:{self.settings.dapr_grpc_port}",
                        interceptors=[_TraceMetadata()],
                        headers_callback=correlation.outgoing_headers,
                    )
                except Exception as exc:  # the SDK raises a bare Exception on a health time-out
                    raise DaprUnavailable(f"Dapr sidecar not reachable: {exc}") from exc
            return self._client

    def _sync_call(self, operation: str, fn: Callable[[DaprClient], T]) -> T:
        with self._sdk_call(operation, self._drop_client):
            return fn(self._ensure_client())

    async def _call(self, operation: str, fn: Callable[[DaprGrpcClientAsync], Awaitable[T]]) -> T:
        with self._sdk_call(operation, self._forget_grpc):
            return await fn(await self._grpc())

    @contextlib.contextmanager
    def _sdk_call(self, operation: str, drop: Callable[[], None]) -> Iterator[None]:
        """One SDK call: timed in dapr_calls_seconds, the SDK's errors turned into ours, and the
        channel dropped (`drop`) when the sidecar is unavailable."""
        started = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        except (DaprUnavailable, DaprCallError):
            raise
        except Exception as exc:
            error = self._translate(operation, exc)
            if isinstance(error, DaprUnavailable):
                drop()
            raise error from exc
        finally:
            metrics.DAPR_CALLS.labels(self.settings.service_name, operation, outcome).observe(
                time.perf_counter() - started
            )

    def _translate(self, operation: str, exc: Exception) -> Exception:
        """One of our two errors for what the SDK raised (anything else is returned as it is)."""
        if isinstance(exc, grpc.RpcError):  # DaprGrpcError, or a raw gRPC error some SDK calls let through
            code_of, details_of = getattr(exc, "code", None), getattr(exc, "details", None)
            code = code_of() if callable(code_of) else grpc.StatusCode.UNAVAILABLE
            details = (details_of() if callable(details_of) else None) or str(exc)
            if code in _UNAVAILABLE_CODES:
                return DaprUnavailable(f"{operation}: {details}")
            return DaprCallError(f"{operation}: {details}", code.name)
        if isinstance(exc, DaprInternalError):
            return DaprCallError(f"{operation}: {exc}", "INTERNAL")
        if isinstance(exc, TimeoutError):
            return DaprUnavailable(f"{operation}: no answer within {self.settings.dapr_timeout_s}s")
        return exc


def _dapr_error_code(response: httpx.Response) -> str:
    """daprd's `errorCode` in an error answer's JSON body; "" when the body is the callee's own."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("errorCode", "")) if isinstance(body, dict) else ""
