"""Dapr's gRPC API (dapr.proto.runtime.v1.Dapr) for the building blocks this project uses.

Methods not overridden here fall through to the generated servicer, which answers
UNIMPLEMENTED, so a service using a building block the sandbox lacks fails loudly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import (
    dapr_pb2_grpc,
    invoke_pb2,
    jobs_pb2,
    metadata_pb2,
    pubsub_pb2,
    secret_pb2,
    state_pb2,
)
from google.protobuf import any_pb2, empty_pb2

from console.sandbox.sidecar import errors
from console.sandbox.sidecar.callscope import CallScope
from console.sandbox.sidecar.invoke import HOP_BY_HOP, with_trace
from console.sandbox.sidecar.runtime import CAPABILITIES, RUNTIME_VERSION, Runtime
from console.sandbox.sidecar.statestore import SetOp

log = logging.getLogger(__name__)
T = TypeVar("T")

_CONCURRENCY = {common_pb2.StateOptions.StateConcurrency.CONCURRENCY_FIRST_WRITE: "first-write",
                common_pb2.StateOptions.StateConcurrency.CONCURRENCY_LAST_WRITE: "last-write"}
_CONSISTENCY = {common_pb2.StateOptions.StateConsistency.CONSISTENCY_EVENTUAL: "eventual",
                common_pb2.StateOptions.StateConsistency.CONSISTENCY_STRONG: "strong"}
_HTTP_TO_GRPC = {408: grpc.StatusCode.CANCELLED, 500: grpc.StatusCode.UNKNOWN, 400: grpc.StatusCode.INTERNAL,
                 504: grpc.StatusCode.DEADLINE_EXCEEDED, 404: grpc.StatusCode.NOT_FOUND,
                 409: grpc.StatusCode.ALREADY_EXISTS, 403: grpc.StatusCode.PERMISSION_DENIED,
                 401: grpc.StatusCode.UNAUTHENTICATED, 429: grpc.StatusCode.RESOURCE_EXHAUSTED,
                 501: grpc.StatusCode.UNIMPLEMENTED, 503: grpc.StatusCode.UNAVAILABLE}
_STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
                409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
                502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _md(context: grpc.ServicerContext) -> dict[str, str]:
    return {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}


def _ttl(metadata: dict[str, str]) -> int | None:
    ttl = metadata.get("ttlInSeconds")
    if ttl is None:
        return None
    try:
        return int(ttl)
    except ValueError:
        raise errors.DaprError(grpc.StatusCode.INTERNAL, 500,
                               f'error parsing TTL: strconv.Atoi: parsing "{ttl}": invalid syntax',
                               "ERR_STATE_SAVE") from None


def _set_op(item: common_pb2.StateItem) -> SetOp:
    """daprd's SetRequest from a StateItem (stateConcurrencyToString: an unknown enum value is "")."""
    return SetOp(
        key=item.key, value=item.value,
        etag=item.etag.value if item.HasField("etag") and item.etag.value else None,
        concurrency=_CONCURRENCY.get(item.options.concurrency, "") if item.HasField("options") else "",
        consistency=_CONSISTENCY.get(item.options.consistency, "") if item.HasField("options") else "",
        ttl_seconds=_ttl(dict(item.metadata)),
    )


def http_error_status(status: int, body: bytes) -> grpc.Status:
    """daprd's ErrorFromHTTPResponseCode: gRPC code from the HTTP status, ErrorInfo with the body."""
    text = _STATUS_TEXT.get(status, "")
    err = errors.DaprError(_HTTP_TO_GRPC.get(status, grpc.StatusCode.UNKNOWN), status, text,
                           reason=text, metadata={"http.code": str(status),
                                                  "http.error_message": body.decode(errors="replace")[:63]})
    return err.grpc_status()


class DaprApi(dapr_pb2_grpc.DaprServicer):
    """The servicer: each method maps a request onto Runtime and DaprError onto a gRPC status."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _call(self, context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except errors.DaprError as exc:
            log.debug("api error", extra={"code": exc.grpc_code.name, "error": exc.message})
            context.abort_with_status(exc.grpc_status())
            raise  # unreachable: abort raises

    # ---- pub/sub -------------------------------------------------------------------------------
    def _scope(self, context: grpc.ServicerContext) -> CallScope:
        """The RPC's deadline and cancellation (daprd's request context)."""
        remaining: float | None = context.time_remaining()  # None: no deadline (grpc documents it)
        if remaining is not None and remaining > 86400:
            remaining = None  # grpc reports "no deadline" as a practically infinite time
        scope = CallScope(self.rt.stop, time.monotonic() + remaining if remaining is not None else None)
        context.add_callback(scope.done.set)  # runs when the RPC ends: cancelled, expired or answered
        return scope

    def PublishEvent(self, request: pubsub_pb2.PublishEventRequest, context: grpc.ServicerContext) -> Any:
        md = _md(context)
        scope = self._scope(context)
        self._call(context, lambda: self.rt.publish(
            request.pubsub_name, request.topic, request.data, request.data_content_type, dict(request.metadata),
            traceparent=md.get("traceparent"), tracestate=md.get("tracestate", ""),
            correlation_id=md.get("x-correlation-id"), call=scope))
        return empty_pb2.Empty()

    # ---- service invocation ---------------------------------------------------------------------
    def InvokeService(self, request: invoke_pb2.InvokeServiceRequest, context: grpc.ServicerContext) -> Any:
        msg = request.message
        verb = common_pb2.HTTPExtension.Verb.Name(msg.http_extension.verb) if msg.HasField("http_extension") else "NONE"
        verb = "POST" if verb == "NONE" else verb
        headers = [(k, v) for k, v in context.invocation_metadata()
                   if isinstance(v, str) and not k.startswith((":", "grpc-")) and k not in ("content-type", "user-agent")]
        if msg.content_type:
            headers.append(("content-type", msg.content_type))
        headers = with_trace(headers, from_grpc=True)
        scope = self._scope(context)
        result = self._call(context, lambda: self.rt.invoker.invoke(
            request.id, msg.method, verb, msg.http_extension.querystring, headers, msg.data.value, success_max=299,
            call=scope))
        # daprd returns the callee's headers as gRPC response headers, plus dapr-http-status
        headers = [(k.lower(), v) for k, v in result.headers
                   if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-type", "date", "server")
                   and k.isascii() and v.isascii() and v.isprintable() and not k.lower().startswith("grpc-")]
        context.send_initial_metadata((*headers, ("dapr-http-status", str(result.status))))
        if not 200 <= result.status <= 299:
            context.abort_with_status(http_error_status(result.status, result.body))
        return common_pb2.InvokeResponse(data=any_pb2.Any(value=result.body), content_type=result.content_type)

    # ---- state ----------------------------------------------------------------------------------
    def GetState(self, request: state_pb2.GetStateRequest, context: grpc.ServicerContext) -> Any:
        scope = self._scope(context)
        entry = self._call(context, lambda: self.rt.state.get(request.store_name, request.key, scope))
        return state_pb2.GetStateResponse(data=entry.value, etag=entry.etag, metadata=entry.metadata)

    def GetBulkState(self, request: state_pb2.GetBulkStateRequest, context: grpc.ServicerContext) -> Any:
        scope = self._scope(context)
        keys = list(request.keys)
        entries = self._call(context, lambda: self.rt.state.bulk_get(request.store_name, keys, scope))
        return state_pb2.GetBulkStateResponse(items=[
            state_pb2.BulkStateItem(key=key, data=e.value, etag=e.etag, metadata=e.metadata)
            for key, e in zip(keys, entries, strict=True)])

    def SaveState(self, request: state_pb2.SaveStateRequest, context: grpc.ServicerContext) -> Any:
        scope = self._scope(context)
        self._call(context, lambda: self.rt.state.save(request.store_name, [_set_op(s) for s in request.states],
                                                       scope))
        return empty_pb2.Empty()

    def DeleteState(self, request: state_pb2.DeleteStateRequest, context: grpc.ServicerContext) -> Any:
        scope = self._scope(context)
        etag = request.etag.value if request.HasField("etag") and request.etag.value else None
        self._call(context, lambda: self.rt.state.delete(request.store_name, request.key, etag, scope))
        return empty_pb2.Empty()

    def DeleteBulkState(self, request: state_pb2.DeleteBulkStateRequest, context: grpc.ServicerContext) -> Any:
        scope = self._scope(context)
        items = [(item.key, item.etag.value if item.HasField("etag") and item.etag.value else None)
                 for item in request.states]
        self._call(context, lambda: self.rt.state.bulk_delete(request.store_name, items, scope))
        return empty_pb2.Empty()

    def ExecuteStateTransaction(self, request: state_pb2.ExecuteStateTransactionRequest,
                                context: grpc.ServicerContext) -> Any:
        scope = self._scope(context)
        ops = [(op.operationType, _set_op(op.request)) for op in request.operations]
        self._call(context, lambda: self.rt.state.transaction(request.storeName, ops, scope))
        return empty_pb2.Empty()

    # ---- secrets --------------------------------------------------------------------------------
    def GetSecret(self, request: secret_pb2.GetSecretRequest, context: grpc.ServicerContext) -> Any:
        data = self._call(context, lambda: self.rt.get_secret(request.store_name, request.key, dict(request.metadata)))
        return secret_pb2.GetSecretResponse(data=data)

    def GetBulkSecret(self, request: secret_pb2.GetBulkSecretRequest, context: grpc.ServicerContext) -> Any:
        data = self._call(context, lambda: self.rt.bulk_secrets(request.store_name, dict(request.metadata)))
        return secret_pb2.GetBulkSecretResponse(
            data={name: secret_pb2.SecretResponse(secrets=keys) for name, keys in data.items()})

    # ---- jobs -----------------------------------------------------------------------------------
    def ScheduleJob(self, request: jobs_pb2.ScheduleJobRequest, context: grpc.ServicerContext) -> Any:
        job = request.job if request.HasField("job") else None
        self._call(context, lambda: self.rt.jobs.schedule(job, request.overwrite))
        return jobs_pb2.ScheduleJobResponse()

    ScheduleJobAlpha1 = ScheduleJob

    def GetJob(self, request: jobs_pb2.GetJobRequest, context: grpc.ServicerContext) -> Any:
        job = self._call(context, lambda: self.rt.jobs.get(request.name))
        return jobs_pb2.GetJobResponse(job=job)

    GetJobAlpha1 = GetJob

    def DeleteJob(self, request: jobs_pb2.DeleteJobRequest, context: grpc.ServicerContext) -> Any:
        self._call(context, lambda: self.rt.jobs.delete(request.name))
        return jobs_pb2.DeleteJobResponse()

    DeleteJobAlpha1 = DeleteJob

    def DeleteJobsByPrefix(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.rt.jobs.delete_prefix(request.name_prefix)
        return jobs_pb2.DeleteJobsByPrefixResponse()

    def DeleteJobsByPrefixAlpha1(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.rt.jobs.delete_prefix(request.name_prefix)
        return jobs_pb2.DeleteJobsByPrefixResponseAlpha1()

    def ListJobs(self, request: Any, context: grpc.ServicerContext) -> Any:
        return jobs_pb2.ListJobsResponse(jobs=self.rt.jobs.list_jobs())

    def ListJobsAlpha1(self, request: Any, context: grpc.ServicerContext) -> Any:
        return jobs_pb2.ListJobsResponseAlpha1(jobs=self.rt.jobs.list_jobs())

    # ---- metadata -------------------------------------------------------------------------------
    def GetMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        rt = self.rt
        resp = metadata_pb2.GetMetadataResponse(
            id=rt.app_id,
            runtime_version=RUNTIME_VERSION,
            registered_components=[
                metadata_pb2.RegisteredComponents(name=c.name, type=c.type, version=c.version,
                                                  capabilities=CAPABILITIES.get(c.kind, []))
                for c in rt.components],
            subscriptions=[
                metadata_pb2.PubsubSubscription(
                    pubsub_name=s.pubsubname, topic=s.topic, metadata=s.metadata,
                    dead_letter_topic=s.dead_letter_topic,
                    rules=metadata_pb2.PubsubSubscriptionRules(rules=[
                        metadata_pb2.PubsubSubscriptionRule(path=s.default_route)]),
                    type=(metadata_pb2.PubsubSubscriptionType.DECLARATIVE if s.declarative
                          else metadata_pb2.PubsubSubscriptionType.PROGRAMMATIC))
                for s in rt.subscriptions],
            extended_metadata={"daprRuntimeVersion": RUNTIME_VERSION, "sandbox": "true"},
        )
        if rt.options.app_port is not None:
            resp.app_connection_properties.CopyFrom(metadata_pb2.AppConnectionProperties(
                port=rt.options.app_port, protocol="http", channel_address="127.0.0.1"))
        return resp


def serve(runtime: Runtime, port: int) -> grpc.Server:
    """Start the gRPC server on loopback; raises RuntimeError if the port is taken."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="grpc"),
                         options=[("grpc.so_reuseport", 0)])
    dapr_pb2_grpc.add_DaprServicer_to_server(DaprApi(runtime), server)
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise RuntimeError(f"cannot listen on 127.0.0.1:{port} (gRPC)")
    server.start()
    return server
