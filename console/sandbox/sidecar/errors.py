"""daprd's API errors: the same gRPC code, HTTP status, message and error code, per building block.

Code written against the sandbox branches on these (``grpc.StatusCode.ABORTED`` for an etag
conflict, ``ERR_DIRECT_INVOKE`` for an unreachable app), so each constructor here mirrors one
error daprd builds (dapr/dapr ``pkg/api/errors``, ``pkg/messages/predefined.go``). The gRPC form
carries google.rpc ``ErrorInfo``/``ResourceInfo`` details as daprd's kit error builder does, so
the SDK's ``DaprGrpcError.get_details()`` reads the same reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "dapr.io"


@dataclass
class DaprError(Exception):
    """One API error; `error_code` is the HTTP body's errorCode, `reason` the gRPC ErrorInfo reason."""

    grpc_code: grpc.StatusCode
    http_status: int
    message: str
    error_code: str = ""
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    resource: tuple[str, str] | None = None  # (type, name) -> ResourceInfo

    def __str__(self) -> str:
        return self.message

    def grpc_status(self) -> grpc.Status:
        """The status daprd would send: code, message and the rich details it attaches."""
        details = []
        if self.reason or self.error_code:
            info = error_details_pb2.ErrorInfo(
                reason=self.reason or self.error_code, domain=ERROR_DOMAIN, metadata=self.metadata
            )
            packed = any_pb2.Any()
            packed.Pack(info)
            details.append(packed)
        if self.resource is not None:
            res = error_details_pb2.ResourceInfo(resource_type=self.resource[0], resource_name=self.resource[1])
            packed = any_pb2.Any()
            packed.Pack(res)
            details.append(packed)
        status = status_pb2.Status(code=self.grpc_code.value[0], message=self.message, details=details)
        return rpc_status.to_status(status)

    def http_body(self) -> bytes:
        """daprd's HTTP error body: {"errorCode": ..., "message": ...}."""
        return json.dumps({"errorCode": self.error_code, "message": self.message}).encode()


C = grpc.StatusCode


# ---- pub/sub (pkg/api/errors/pubsub.go) -------------------------------------------------------
def pubsub_not_found(name: str) -> DaprError:
    return DaprError(C.INVALID_ARGUMENT, 404, f"pubsub {name} is not found",
                     "ERR_PUBSUB_NOT_FOUND", "DAPR_PUBSUB_NOT_FOUND")


def pubsub_name_empty() -> DaprError:
    return DaprError(C.INVALID_ARGUMENT, 404, "pubsub name is empty", "ERR_PUBSUB_EMPTY", "DAPR_PUBSUB_NAME_EMPTY")


def pubsub_topic_empty(name: str) -> DaprError:
    return DaprError(C.INVALID_ARGUMENT, 404, f"topic is empty in pubsub {name}",
                     "ERR_TOPIC_NAME_EMPTY", "DAPR_PUBSUB_TOPIC_NAME_EMPTY", resource=("pubsub", name))


def pubsub_metadata(name: str, err: str) -> DaprError:
    return DaprError(C.INVALID_ARGUMENT, 400, f"failed deserializing metadata. Error: {err}",
                     "ERR_PUBSUB_REQUEST_METADATA", "DAPR_PUBSUB_METADATA_DESERIALIZATION",
                     resource=("pubsub", name))


def pubsub_cloudevent(name: str, app_id: str, err: str) -> DaprError:
    return DaprError(C.INVALID_ARGUMENT, 500, "cannot create cloudevent", "ERR_PUBSUB_CLOUD_EVENTS_SER",
                     "DAPR_PUBSUB_CLOUD_EVENT_CREATION", {"appID": app_id, "error": err}, ("pubsub", name))


def pubsub_forbidden(name: str, topic: str, app_id: str) -> DaprError:
    return DaprError(C.PERMISSION_DENIED, 403, f"topic {topic} is not allowed for app id {app_id}",
                     "ERR_PUBSUB_FORBIDDEN", "DAPR_PUBSUB_FORBIDDEN", {"topic": topic}, ("pubsub", name))


def pubsub_publish(name: str, topic: str, err: str) -> DaprError:
    return DaprError(C.INTERNAL, 500, f"error when publishing to topic {topic} in pubsub {name}: {err}",
                     "ERR_PUBSUB_PUBLISH_MESSAGE", "DAPR_PUBSUB_PUBLISH_MESSAGE",
                     {"topic": topic, "error": err}, ("pubsub", name))


# ---- state (pkg/api/errors/state.go, grpc.go) --------------------------------------------------
def state_store_not_found(name: str, app_id: str = "") -> DaprError:
    """The app has state stores, none by that name (the HTTP API puts the app-id in the details)."""
    return DaprError(C.INVALID_ARGUMENT, 400, f"state store {name} is not found",
                     "ERR_STATE_STORE_NOT_FOUND", "DAPR_STATE_NOT_FOUND", {"appID": app_id} if app_id else {})


def state_store_not_configured(name: str, app_id: str = "") -> DaprError:
    """The app has no state store at all (none in scope for its app-id)."""
    return DaprError(C.FAILED_PRECONDITION, 500, f"state store {name} is not configured",
                     "ERR_STATE_STORE_NOT_CONFIGURED", "DAPR_STATE_NOT_CONFIGURED",
                     {"appID": app_id} if app_id else {})


def state_key_empty() -> DaprError:
    return DaprError(C.INVALID_ARGUMENT, 400, "state key cannot be empty", "ERR_STATE_SAVE")


def state_illegal_key(key: str) -> DaprError:
    return DaprError(C.INVALID_ARGUMENT, 400, f"input key/keyPrefix '{key}' can't contain '||'",
                     "ERR_MALFORMED_REQUEST", "DAPR_STATE_ILLEGAL_KEY")


def state_get(key: str, store: str, err: str) -> DaprError:
    return DaprError(C.INTERNAL, 500, f"fail to get {key} from state store {store}: {err}", "ERR_STATE_GET")


def state_bulk_get(err: str) -> DaprError:
    return DaprError(C.INTERNAL, 500, err, "ERR_STATE_BULK_GET")


def _state_code(err: Exception) -> grpc.StatusCode:
    """getStateErrorCode: Aborted for an ETag mismatch, InvalidArgument for an invalid ETag, else Internal."""
    return err.grpc_code if isinstance(err, StateStoreError) else C.INTERNAL


def state_save(store: str, err: Exception) -> DaprError:
    return DaprError(_state_code(err), 500, f"failed saving state in state store {store}: {err}", "ERR_STATE_SAVE")


def state_delete(key: str, err: Exception) -> DaprError:
    return DaprError(_state_code(err), 500, f"failed deleting state with key {key}: {err}", "ERR_STATE_DELETE")


def state_bulk_delete(store: str, err: Exception) -> DaprError:
    return DaprError(_state_code(err), 500, f"failed deleting state in state store {store}: {err}",
                     "ERR_STATE_BULK_DELETE")


def state_transaction(err: Exception) -> DaprError:
    return DaprError(C.INTERNAL, 500, f"error while executing state transaction: {err}", "ERR_STATE_TRANSACTION")


def state_operation_unsupported(op: str) -> DaprError:
    return DaprError(C.UNIMPLEMENTED, 500, f"operation type {op} not supported", "ERR_NOT_SUPPORTED_STATE_OPERATION")


class StateStoreError(Exception):
    """A component-level failure; `grpc_code` is what daprd's getStateErrorCode maps it to."""

    grpc_code = C.INTERNAL


class ETagError(StateStoreError):
    """components-contrib state.ETagError: never retried by a save's Resiliency policy."""


class ETagMismatch(ETagError):
    """components-contrib state.ETagError of kind mismatch -> codes.Aborted."""

    grpc_code = C.ABORTED

    def __init__(self, cause: str = "") -> None:
        text = "possible etag mismatch. error from state store"
        super().__init__(f"{text}: {cause}" if cause else text)


class ETagInvalid(ETagError):
    """components-contrib state.ETagError of kind invalid -> codes.InvalidArgument."""

    grpc_code = C.INVALID_ARGUMENT

    def __init__(self, cause: str) -> None:
        super().__init__(f"invalid etag value: {cause}")


class JoinedStoreError(StateStoreError):
    """Several items of one bulk call failed: Go's errors.Join of their errors (one per line).

    Its code is the first ETag error's, as getStateErrorCode finds it with errors.As.
    """

    def __init__(self, failures: list[StateStoreError]) -> None:
        super().__init__("\n".join(str(f) for f in failures))
        self.grpc_code = next((f.grpc_code for f in failures if isinstance(f, ETagError)), C.INTERNAL)


def bulk_etag_error(failures: list[StateStoreError]) -> ETagError:
    """Every failed item of a bulk call had an ETag error: PerformBulkStoreOperation wraps them in one
    ETagError, of kind invalid if any was invalid, else mismatch."""
    joined = "\n".join(str(f) for f in failures)
    if any(isinstance(f, ETagInvalid) for f in failures):
        return ETagInvalid(joined)
    return ETagMismatch(joined)


# ---- secrets (pkg/messages/predefined.go) ------------------------------------------------------
def secret_store_not_configured() -> DaprError:
    return DaprError(C.FAILED_PRECONDITION, 500, "secret store is not configured", "ERR_SECRET_STORES_NOT_CONFIGURED")


def secret_store_not_found(name: str) -> DaprError:
    return DaprError(C.INVALID_ARGUMENT, 401, f"failed finding secret store with key {name}",
                     "ERR_SECRET_STORE_NOT_FOUND")


def secret_get(key: str, store: str, err: str) -> DaprError:
    return DaprError(C.INTERNAL, 500, f"failed getting secret with key {key} from secret store {store}: {err}",
                     "ERR_SECRET_GET")


def bulk_secret_get(store: str, err: str) -> DaprError:
    return DaprError(C.INTERNAL, 500, f"failed getting secrets from secret store {store}: {err}", "ERR_SECRET_GET")


def secret_denied(key: str, store: str) -> DaprError:
    return DaprError(C.PERMISSION_DENIED, 403, f'access denied by policy to get "{key}" from "{store}"',
                     "ERR_PERMISSION_DENIED")


# ---- service invocation ------------------------------------------------------------------------
def direct_invoke(app_id: str, err: str, http_status: int = 500) -> DaprError:
    """ERR_DIRECT_INVOKE; daprd answers HTTP 403 instead of 500 when the callee denied access."""
    return DaprError(C.INTERNAL, http_status, f"failed to invoke, id: {app_id}, err: {err}", "ERR_DIRECT_INVOKE")


# ---- jobs (pkg/api/errors/scheduler.go, api/universal/jobs.go) ---------------------------------
def job_empty(what: str, app_id: str, namespace: str, error_code: str) -> DaprError:
    return DaprError(C.INVALID_ARGUMENT, 400, f"{what} is empty", error_code, error_code,
                     {"appID": app_id, "namespace": namespace})


def job_schedule(app_id: str, namespace: str, wire_code: grpc.StatusCode, detail: str) -> DaprError:
    """daprd wraps the scheduler's gRPC error text; an Unknown code from the scheduler becomes Internal."""
    code = C.INTERNAL if wire_code == C.UNKNOWN else wire_code
    http = {C.INTERNAL: 500, C.ALREADY_EXISTS: 409, C.INVALID_ARGUMENT: 400}.get(code, 500)
    return DaprError(code, http, f"failed to schedule job due to: {rpc_error_text(wire_code, detail)}",
                     "DAPR_SCHEDULER_SCHEDULE_JOB", "DAPR_SCHEDULER_SCHEDULE_JOB",
                     {"appID": app_id, "namespace": namespace})


def rpc_error_text(code: grpc.StatusCode, detail: str) -> str:
    """Go's grpc status error string, which daprd embeds in scheduler errors."""
    name = code.name.title().replace("_", "")
    return f"rpc error: code = {name} desc = {detail}"


def job_get(app_id: str, namespace: str, detail: str) -> DaprError:
    return DaprError(C.INTERNAL, 500, f"failed to get job due to: {detail}", "DAPR_SCHEDULER_GET_JOB",
                     "DAPR_SCHEDULER_GET_JOB", {"appID": app_id, "namespace": namespace})


def job_delete(app_id: str, namespace: str, detail: str) -> DaprError:
    return DaprError(C.INTERNAL, 500, f"failed to delete job due to: {detail}", "DAPR_SCHEDULER_DELETE_JOB",
                     "DAPR_SCHEDULER_DELETE_JOB", {"appID": app_id, "namespace": namespace})


# ---- what the sandbox refuses ------------------------------------------------------------------
def not_implemented(what: str, hint: str) -> DaprError:
    """A call daprd would serve and the dev sidecar does not: refused, saying so, never faked."""
    return DaprError(C.UNIMPLEMENTED, 501, f"{what} is not implemented by the dev sidecar: {hint} "
                     "(console/sandbox/sidecar/README.md, Known differences)", "ERR_SANDBOX_NOT_IMPLEMENTED")


# ---- health -------------------------------------------------------------------------------------
def not_ready(detail: str) -> DaprError:
    return DaprError(C.INTERNAL, 500, f"dapr is not ready: {detail}", "ERR_HEALTH_NOT_READY")


def outbound_not_ready() -> DaprError:
    return DaprError(C.INTERNAL, 500, "dapr outbound is not ready", "ERR_OUTBOUND_HEALTH_NOT_READY")
