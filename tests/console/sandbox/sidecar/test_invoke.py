"""Service invocation conformance: HTTP API (the SDK's default) and gRPC InvokeService.

https://docs.dapr.io/reference/api/service_invocation_api/ ;
resiliency: https://docs.dapr.io/operations/resiliency/policies/ (retries, timeouts, circuit
breakers, retry `matching`) ; error shapes from dapr/dapr pkg/api/http/directmessaging.go and
pkg/messaging/v1/util.go (ErrorFromHTTPResponseCode for gRPC callers).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from dapr.clients.exceptions import DaprHttpError, DaprInternalError

from tests.utils.dapr_sdk import sdk_settings
from tests.utils.sidecars import Sandbox, Sidecar
from tests.utils.stub_apps import StubApp, start_app
from tests.utils.waiting import wait_until


@pytest.fixture(scope="module")
def flaky_app(sandbox: Sandbox) -> Iterator[StubApp]:
    """Registered as app-ids flaky, picky and slow (each with its own resiliency target)."""
    gate = threading.Event()
    app = start_app({
        "/fail": (500, b"flaky says no"),
        "/unavailable": (503, b"later"),
        "/sleep": lambda r: (gate.wait(3), (200, b"late"))[1],
        "/ok": (200, b"fine"),
    })
    for app_id in ("flaky", "picky", "slow"):
        sandbox.register(app_id, app.port)
    yield app
    gate.set()
    app.stop()


def test_sdk_invoke_method_goes_over_http_and_reaches_the_app(backend: Sidecar, worker: Sidecar,
                                                              worker_app: StubApp) -> None:
    # dapr SDK 1.19 invoke_method: HTTP /v1.0/invoke/<app-id>/method/<path> by default;
    # headers_callback headers become HTTP headers, forwarded to the callee
    with backend.client({"x-correlation-id": "c-7"}) as client:
        resp = client.invoke_method("worker", "echo", data=b'{"q": 1}', http_verb="PUT",
                                    content_type="application/json", http_querystring=(("x", "1"),))
    body = resp.json()
    assert resp.status_code == 200
    assert body["method"] == "PUT"
    assert body["path"] == "/echo?x=1"
    assert body["body"] == '{"q": 1}'
    assert body["headers"]["x-correlation-id"] == "c-7"
    assert body["headers"]["content-type"] == "application/json"
    assert resp.headers.get("x-callee") == ["worker"] or resp.headers.get("X-Callee") == ["worker"]


def test_callee_status_and_body_are_passed_back(backend: Sidecar, worker: Sidecar, worker_app: StubApp) -> None:
    resp = httpx.get(f"{backend.http}/v1.0/invoke/worker/method/teapot")
    assert (resp.status_code, resp.text, resp.headers["x-callee"]) == (418, "short and stout", "worker")
    # proxy style: any path, target app in the dapr-app-id header
    resp = httpx.post(f"{backend.http}/echo?via=header", headers={"dapr-app-id": "worker"}, content=b"hi")
    assert resp.status_code == 200
    assert resp.json()["path"] == "/echo?via=header"
    assert "dapr-app-id" not in resp.json()["headers"]


def test_sdk_raises_on_a_non_2xx_callee(backend_client, worker: Sidecar) -> None:
    with pytest.raises((DaprHttpError, DaprInternalError)) as err:
        backend_client.invoke_method("worker", "teapot", http_verb="GET")
    assert "418" in str(err.value) or getattr(err.value, "status_code", None) == 418


def test_unknown_app_id(backend: Sidecar) -> None:
    # predefined.go ErrDirectInvoke: 500, ERR_DIRECT_INVOKE, "failed to invoke, id: <id>, err: ..."
    resp = httpx.post(f"{backend.http}/v1.0/invoke/ghost/method/x")
    assert resp.status_code == 500
    assert resp.json()["errorCode"] == "ERR_DIRECT_INVOKE"
    assert resp.json()["message"].startswith("failed to invoke, id: ghost, err: ")


def test_retries_then_circuit_breaker(backend: Sidecar, flaky_app: StubApp) -> None:
    # flaky: retry 2x (3 calls per invoke); breaker trips at 6 consecutive failures, 2s open
    url = f"{backend.http}/v1.0/invoke/flaky/method/fail"
    first = httpx.post(url)
    assert (first.status_code, first.text) == (500, "flaky says no")  # the callee's answer after retries
    assert len(flaky_app.calls("/fail")) == 3
    httpx.post(url)
    assert len(flaky_app.calls("/fail")) == 6
    opened = httpx.post(url)
    assert len(flaky_app.calls("/fail")) == 6  # not called: the breaker is open
    assert opened.status_code == 500
    assert opened.json()["errorCode"] == "ERR_DIRECT_INVOKE"
    assert "circuit breaker is open" in opened.json()["message"]
    # after the breaker's timeout it lets a trial request through (half-open) and closes on success
    wait_until(lambda: httpx.post(f"{backend.http}/v1.0/invoke/flaky/method/ok").status_code == 200, 5, 0.2,
               "breaker half-open")


def test_retry_matching_limits_retries_to_listed_codes(backend: Sidecar, flaky_app: StubApp) -> None:
    # picky retries only 502-504
    before_fail, before_unavail = len(flaky_app.calls("/fail")), len(flaky_app.calls("/unavailable"))
    assert httpx.post(f"{backend.http}/v1.0/invoke/picky/method/fail").status_code == 500
    assert len(flaky_app.calls("/fail")) - before_fail == 1
    assert httpx.post(f"{backend.http}/v1.0/invoke/picky/method/unavailable").status_code == 503
    assert len(flaky_app.calls("/unavailable")) - before_unavail == 3


def test_timeout_policy(backend: Sidecar, flaky_app: StubApp) -> None:
    started = time.monotonic()
    resp = httpx.post(f"{backend.http}/v1.0/invoke/slow/method/sleep", timeout=10)
    assert time.monotonic() - started < 2.5
    assert resp.status_code == 500
    assert "context deadline exceeded" in resp.json()["message"]


def test_grpc_invoke_service(backend: Sidecar, worker: Sidecar) -> None:
    # SDK with DAPR_API_METHOD_INVOCATION_PROTOCOL=grpc uses InvokeService; non-2xx -> gRPC status
    with sdk_settings(DAPR_API_METHOD_INVOCATION_PROTOCOL="grpc"), backend.client() as client:
        resp = client.invoke_method("worker", "echo", data=b"over grpc", http_verb="POST")
        assert resp.json()["body"] == "over grpc"
        assert resp.json()["method"] == "POST"
        assert resp.headers["x-callee"] == ["worker"]
        assert resp.headers["dapr-http-status"] == ["200"]
        with pytest.raises(grpc.RpcError) as err:
            client.invoke_method("worker", "missing-route", data=b"", http_verb="GET")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert err.value.details() == "Not Found"
        with pytest.raises(grpc.RpcError) as err:
            client.invoke_method("ghost", "x", data=b"")
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert str(err.value.details()).startswith("failed to invoke, id: ghost")


def _lines(worker_app: StubApp, path: str) -> dict[str, list[str]]:
    """The last request to `path`, header name -> every value it came with (repeats kept)."""
    out: dict[str, list[str]] = {}
    for name, value in worker_app.calls(path)[-1].header_lines:
        out.setdefault(name, []).append(value)
    return out


def test_the_callee_gets_the_headers_daprd_adds(backend: Sidecar, worker: Sidecar, worker_app: StubApp) -> None:
    # pkg/messaging/direct_messaging.go invokeRemote: addForwardedHeadersToMetadata (appended to the
    # caller's), addCallerAndCalleeAppIDHeaderToMetadata (set by daprd, whatever the caller said);
    # the host address is the sidecar's (DAPR_HOST_IP or the pod IP; 127.0.0.1 in the sandbox)
    import socket

    worker_app.routes["/headers"] = (200, b"")
    host = socket.gethostname()
    resp = httpx.post(f"{backend.http}/v1.0/invoke/worker/method/headers",
                      headers={"X-Forwarded-For": "203.0.113.9", "dapr-caller-app-id": "someone-else"})
    assert resp.status_code == 200
    seen = _lines(worker_app, "/headers")
    assert seen["dapr-caller-app-id"] == ["backend"]
    assert seen["dapr-callee-app-id"] == ["worker"]
    assert seen["dapr-caller-namespace"] == ["todo-app"]
    assert seen["x-forwarded-for"] == ["203.0.113.9", "127.0.0.1"]
    assert seen["x-forwarded-host"] == [host]
    assert seen["forwarded"] == [f"for=127.0.0.1;by=127.0.0.1;host={host}"]


def test_the_callee_gets_daprds_traceparent(backend: Sidecar, worker: Sidecar, worker_app: StubApp) -> None:
    # pkg/messaging/v1/util.go InternalMetadataToHTTPHeader: an HTTP caller's traceparent reaches the app
    # as sent (processHTTPToHTTPTraceHeaders), one that sent none gets daprd's span; from a gRPC caller
    # the app always gets daprd's span (processGRPCToHTTPTraceHeaders): same trace, a new span id
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    worker_app.routes["/trace"] = (200, b"")
    httpx.post(f"{backend.http}/v1.0/invoke/worker/method/trace", headers={"traceparent": parent})
    assert _lines(worker_app, "/trace")["traceparent"] == [parent]
    httpx.post(f"{backend.http}/v1.0/invoke/worker/method/trace")
    [started] = _lines(worker_app, "/trace")["traceparent"]
    assert started.startswith("00-")
    assert started.split("-")[1] != parent.split("-")[1]
    with sdk_settings(DAPR_API_METHOD_INVOCATION_PROTOCOL="grpc"), \
            backend.client({"traceparent": parent}) as client:
        client.invoke_method("worker", "trace", data=b"", http_verb="POST")
    [child] = _lines(worker_app, "/trace")["traceparent"]
    version, trace_id, span_id, flags = child.split("-")
    assert (version, trace_id, flags) == ("00", parent.split("-")[1], "01")
    assert span_id != parent.split("-")[2]


def test_expect_100_continue_is_answered_before_the_body(backend: Sidecar, flaky_app: StubApp) -> None:
    """A caller that sends `Expect: 100-continue` (curl, for bodies over 1 KiB) gets the interim answer
    at once, as from daprd's Go server, then the callee's; the sidecar buffers its answers into one
    write, which must not hold the interim one back."""
    with socket.create_connection(("127.0.0.1", backend.http_port), timeout=10) as sock:
        sock.sendall(b"POST /v1.0/invoke/flaky/method/ok HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Length: 2048\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(4096)  # times out (fails) if the interim answer is held back
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"x" * 2048)
        answer = b""
        while b"fine" not in answer:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed before the answer: {answer!r}"
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
