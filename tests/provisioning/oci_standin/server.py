"""The stand-in's HTTP side: OCI's REST paths, signatures, retry tokens, and faults a test asks for.

The real `oci` SDK reaches it through `service_endpoint`: every client (Virtual Network, Container
Engine, Identity, Limits, Load Balancer) sends its requests here under its own API version prefix. Every
request is recorded by SDK operation name, so a test can say what the tool did (and did not do).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.provisioning.oci_standin.cloud import NETWORK, Answer, ApiError, Cloud
from tests.provisioning.oci_standin.signing import ApiKey, SignatureRejected, verify
from tests.utils.local_server import LocalServer, read_body, reply

CORE, CONTAINER_ENGINE, LIMITS, LOAD_BALANCER = "/20160918", "/20180222", "/20190729", "/20170115"
_ID = r"(?P<id>[^/]+)"

Handler = Callable[[re.Match[str], dict[str, list[str]], Any], Answer]


@dataclass(frozen=True)
class Call:
    operation: str
    method: str
    path: str
    status: int
    retry_token: str | None = None
    replayed: bool = False

    @property
    def mutating(self) -> bool:
        verb = self.operation.split("_", 1)[0]
        return verb in ("create", "update", "delete") and self.operation != "create_kubeconfig"


@dataclass
class Fault:
    """Answer `status` to the next `times` calls of `operation`. With `after_commit`, do the work first
    and then answer the error: the caller never learns that it succeeded (what retry tokens are for)."""

    operation: str
    status: int
    times: int = 1
    after_commit: bool = False
    retry_after: str | None = None

    @property
    def code(self) -> str:
        return {429: "TooManyRequests", 409: "Conflict", 500: "InternalServerError",
                503: "ServiceUnavailable"}.get(self.status, "Error")


class OciStandIn:
    def __init__(self, cloud: Cloud, key: ApiKey) -> None:
        self.cloud, self.key = cloud, key
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.on_call: Callable[[Call], None] | None = None
        self._tokens: dict[str, tuple[str, str, Answer]] = {}
        self._lock = threading.RLock()
        self._routes = self._route_table()
        self._server = LocalServer(self._handle, "oci-standin")

    # ---- control from tests -------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def fail_next_work_request(self, operation_type: str, message: str) -> None:
        with self._lock:
            self.cloud.fail_work_requests[operation_type] = message

    def count(self, operation: str) -> int:
        return sum(1 for call in self.calls if call.operation == operation)

    def mutating_calls(self) -> list[Call]:
        return [call for call in self.calls if call.mutating]

    def live(self, kind: str) -> list[dict[str, Any]]:
        """Resources of a kind that exist (not terminated or deleted), as OCI would return them."""
        with self._lock:
            self.cloud.tick()
            return [item.data for item in self.cloud.items.values() if item.kind == kind and not item.default
                    and item.state not in ("TERMINATED", "DELETED")]

    # ---- serving ----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> OciStandIn:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        raw = read_body(request)
        headers = {name.lower(): value for name, value in request.headers.items()}
        parts = urlsplit(request.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        operation, handler, match = self._route(request.command, parts.path)
        token = headers.get("opc-retry-token")
        replayed = False
        try:
            verify(self.key, request.command, request.path, headers, raw)
            if handler is None or match is None:
                raise ApiError(404, "NotAuthorizedOrNotFound", f"{request.command} {parts.path} is not an OCI API")
            body = json.loads(raw) if raw else None
            answer, replayed = self._answer(operation, handler, match, query, body, raw, token)
        except SignatureRejected as exc:
            answer = _error(401, "NotAuthenticated", str(exc))
        except json.JSONDecodeError:
            answer = _error(400, "InvalidParameter", "the body is not JSON")
        except ApiError as exc:
            answer = _error(exc.status, exc.code, exc.message)
        call = Call(operation, request.command, parts.path, answer.status, token, replayed)
        with self._lock:
            self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        _write(request, answer)

    def _answer(self, operation: str, handler: Handler, match: re.Match[str], query: dict[str, list[str]],
                body: Any, raw: bytes, token: str | None) -> tuple[Answer, bool]:
        fault = self._take_fault(operation)
        if fault is not None and not fault.after_commit:
            return _error(fault.status, fault.code, "injected", fault.retry_after), False
        with self._lock:
            digest = hashlib.sha256(raw).hexdigest()
            if token and token in self._tokens:
                first_operation, first_digest, first = self._tokens[token]
                if (first_operation, first_digest) != (operation, digest):
                    raise ApiError(409, "Conflict", "this opc-retry-token was used for a different request")
                return first, True
            self.cloud.tick()
            answer = handler(match, query, body)
            if token and answer.status < 300:
                self._tokens[token] = (operation, digest, answer)
        if fault is not None:
            return _error(fault.status, fault.code, "injected after the work was done", fault.retry_after), False
        return answer, False

    def _take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.operation == operation and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _route(self, method: str, path: str) -> tuple[str, Handler | None, re.Match[str] | None]:
        for route_method, pattern, operation, handler in self._routes:
            if route_method == method and (match := pattern.fullmatch(path)):
                return operation, handler, match
        return "unknown", None, None

    def _route_table(self) -> list[tuple[str, re.Pattern[str], str, Handler]]:
        cloud = self.cloud
        routes: list[tuple[str, str, str, Handler]] = []
        for path, (kind, *_) in NETWORK.items():
            routes += _network_routes(cloud, path, kind)
        ce = CONTAINER_ENGINE
        routes += [
            ("GET", f"{CORE}/services", "list_services", lambda m, q, b: cloud.list_services(q)),
            ("GET", f"{CORE}/availabilityDomains", "list_availability_domains",
             lambda m, q, b: cloud.availability_domains(q)),
            ("POST", f"{ce}/clusters", "create_cluster", lambda m, q, b: cloud.cluster_create(b)),
            ("GET", f"{ce}/clusters", "list_clusters", lambda m, q, b: cloud.cluster_list(q)),
            ("GET", f"{ce}/clusters/{_ID}", "get_cluster", lambda m, q, b: cloud.cluster_get(m["id"])),
            ("PUT", f"{ce}/clusters/{_ID}", "update_cluster", lambda m, q, b: cloud.cluster_update(m["id"], b)),
            ("DELETE", f"{ce}/clusters/{_ID}", "delete_cluster", lambda m, q, b: cloud.cluster_delete(m["id"])),
            ("POST", f"{ce}/clusters/{_ID}/kubeconfig/content", "create_kubeconfig",
             lambda m, q, b: cloud.kubeconfig(m["id"], b)),
            ("POST", f"{ce}/nodePools", "create_node_pool", lambda m, q, b: cloud.node_pool_create(b)),
            ("GET", f"{ce}/nodePools", "list_node_pools", lambda m, q, b: cloud.node_pool_list(q)),
            ("GET", f"{ce}/nodePools/{_ID}", "get_node_pool", lambda m, q, b: cloud.node_pool_get(m["id"])),
            ("PUT", f"{ce}/nodePools/{_ID}", "update_node_pool", lambda m, q, b: cloud.node_pool_update(m["id"], b)),
            ("DELETE", f"{ce}/nodePools/{_ID}", "delete_node_pool", lambda m, q, b: cloud.node_pool_delete(m["id"])),
            ("GET", f"{ce}/workRequests", "list_work_requests", lambda m, q, b: cloud.work_request_list(q)),
            ("GET", f"{ce}/workRequests/{_ID}", "get_work_request", lambda m, q, b: cloud.work_request_get(m["id"])),
            ("GET", f"{ce}/workRequests/{_ID}/errors", "list_work_request_errors",
             lambda m, q, b: cloud.work_request_errors(m["id"])),
            ("GET", f"{ce}/nodePoolOptions/{_ID}", "get_node_pool_options",
             lambda m, q, b: cloud.node_pool_options(m["id"], q)),
            ("GET", f"{ce}/clusterOptions/{_ID}", "get_cluster_options",
             lambda m, q, b: cloud.cluster_options(m["id"], q)),
            ("GET", f"{LIMITS}/limitValues", "list_limit_values", lambda m, q, b: cloud.limit_values(q)),
            ("GET", f"{LIMITS}/services/(?P<service>[^/]+)/limits/(?P<limit>[^/]+)/resourceAvailability",
             "get_resource_availability",
             lambda m, q, b: cloud.resource_availability(m["service"], m["limit"], q)),
            ("GET", f"{LOAD_BALANCER}/loadBalancers", "list_load_balancers", lambda m, q, b: cloud.lb_list(q)),
            ("GET", f"{LOAD_BALANCER}/loadBalancers/{_ID}", "get_load_balancer", lambda m, q, b: cloud.lb_get(m["id"])),
            ("DELETE", f"{LOAD_BALANCER}/loadBalancers/{_ID}", "delete_load_balancer",
             lambda m, q, b: cloud.lb_delete(m["id"])),
            ("GET", f"{LOAD_BALANCER}/loadBalancerWorkRequests/{_ID}", "get_lb_work_request",
             lambda m, q, b: cloud.lb_work_request(m["id"])),
        ]
        return [(method, re.compile(pattern), operation, handler) for method, pattern, operation, handler in routes]


def _network_routes(cloud: Cloud, path: str, kind: str) -> list[tuple[str, str, str, Handler]]:
    """The five operations of one Virtual Network collection (vcns, subnets, ...)."""

    def create(m: re.Match[str], q: dict[str, list[str]], b: Any) -> Answer:
        return cloud.network_create(path, b)

    def list_(m: re.Match[str], q: dict[str, list[str]], b: Any) -> Answer:
        return cloud.network_list(path, q)

    def get(m: re.Match[str], q: dict[str, list[str]], b: Any) -> Answer:
        return cloud.network_get(path, m["id"])

    def update(m: re.Match[str], q: dict[str, list[str]], b: Any) -> Answer:
        return cloud.network_update(path, m["id"], b)

    def delete(m: re.Match[str], q: dict[str, list[str]], b: Any) -> Answer:
        return cloud.network_delete(path, m["id"])

    return [("POST", f"{CORE}/{path}", f"create_{kind}", create), ("GET", f"{CORE}/{path}", f"list_{kind}s", list_),
            ("GET", f"{CORE}/{path}/{_ID}", f"get_{kind}", get), ("PUT", f"{CORE}/{path}/{_ID}", f"update_{kind}", update),
            ("DELETE", f"{CORE}/{path}/{_ID}", f"delete_{kind}", delete)]


def _error(status: int, code: str, message: str, retry_after: str | None = None) -> Answer:
    headers = {"retry-after": retry_after} if retry_after else {}
    return Answer(status, {"code": code, "message": message}, headers)


def _write(request: BaseHTTPRequestHandler, answer: Answer) -> None:
    if answer.body is None:
        payload = b""
    elif isinstance(answer.body, str):
        payload = answer.body.encode()
    else:
        payload = json.dumps(answer.body).encode()
    headers = {"content-type": "application/json", "opc-request-id": secrets.token_hex(16), **answer.headers}
    reply(request, answer.status, payload, headers)
