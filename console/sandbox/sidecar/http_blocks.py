"""HTTP forms of the state, secrets and jobs APIs (handy for curl and runbooks), over the same Runtime.

Shapes from https://docs.dapr.io/reference/api/state_api/ and .../secrets_api/: save is a JSON
array of {key, value, etag, options, metadata} (204); get answers the stored bytes with an ETag
header (204 when missing); delete takes the ETag in If-Match; bulk and transaction as documented.
An ETag mismatch is 409, an invalid ETag 400 (daprd's stateErrorResponse).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import grpc
from dapr.proto.runtime.v1 import jobs_pb2
from google.protobuf import json_format, struct_pb2

from console.sandbox.sidecar import errors
from console.sandbox.sidecar.runtime import Runtime
from console.sandbox.sidecar.statestore import SetOp

Answer = tuple[int, bytes, list[tuple[str, str]]]
_JSON = [("content-type", "application/json")]
_STATE_HTTP = {grpc.StatusCode.ABORTED: 409, grpc.StatusCode.INVALID_ARGUMENT: 400}


def _malformed(exc: Exception) -> errors.DaprError:
    return errors.DaprError(grpc.StatusCode.INVALID_ARGUMENT, 400, f"failed deserializing HTTP body: {exc}",
                            "ERR_MALFORMED_REQUEST")


def _with_state_status(err: errors.DaprError) -> errors.DaprError:
    err.http_status = _STATE_HTTP.get(err.grpc_code, err.http_status)
    return err


def _set_op(item: dict[str, Any]) -> SetOp:
    """A state item of the HTTP API (`key`, `value`, `etag`, `options`, `metadata`) as daprd decodes it."""
    if not isinstance(item, dict) or not item.get("key"):
        raise errors.DaprError(grpc.StatusCode.INVALID_ARGUMENT, 400, '"key" is a required field',
                               "ERR_MALFORMED_REQUEST")
    options = item.get("options") or {}
    ttl = (item.get("metadata") or {}).get("ttlInSeconds")
    return SetOp(key=str(item["key"]), value=json.dumps(item.get("value"), separators=(",", ":")).encode(),
                 etag=str(item["etag"]) if item.get("etag") else None,
                 concurrency=str(options.get("concurrency") or ""), consistency=str(options.get("consistency") or ""),
                 ttl_seconds=int(ttl) if ttl is not None else None)


def _decoded(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")


def _metadata_headers(metadata: dict[str, str]) -> list[tuple[str, str]]:
    """setResponseMetadataHeaders: each response metadata entry as a `metadata.<key>` header."""
    return [(f"metadata.{k}", v) for k, v in metadata.items()]


def state(rt: Runtime, method: str, rest: str, headers: dict[str, str], body: bytes) -> Answer:
    """/v1.0/state/<store>[/<key> | /bulk | /transaction]."""
    store, _, key = rest.partition("/")
    store, key = unquote(store), unquote(key)
    api = rt.state
    try:
        if method == "POST" and key == "":
            api.check_store(store, http=True)
            items = json.loads(body or b"[]")
            if not isinstance(items, list):
                raise TypeError("expected a JSON array of state items")
            api.save(store, [_set_op(i) for i in items], http=True)
            return 204, b"", []
        if method == "POST" and key == "bulk":
            keys = [str(k) for k in json.loads(body or b"{}").get("keys", [])]
            out = []
            for k, entry in zip(keys, api.bulk_get(store, keys, http=True), strict=True):
                item: dict[str, Any] = {"key": k}
                if entry.value:
                    item.update(data=_decoded(entry.value), etag=entry.etag)
                if entry.metadata:
                    item["metadata"] = entry.metadata
                out.append(item)
            return 200, json.dumps(out).encode(), _JSON
        if method == "POST" and key == "transaction":
            ops = [(str(op.get("operation")), _set_op(op.get("request") or {}))
                   for op in json.loads(body or b"{}").get("operations", [])]
            api.transaction(store, ops, http=True)
            return 204, b"", []
        if method == "GET" and key:
            entry = api.get(store, key, http=True)
            if not entry.value:
                return 204, b"", []
            return 200, entry.value, [("etag", entry.etag), *_metadata_headers(entry.metadata), *_JSON]
        if method == "DELETE" and key:
            api.delete(store, key, headers.get("if-match") or None, http=True)
            return 204, b"", []
    except (ValueError, TypeError, AttributeError) as exc:
        raise _malformed(exc) from None
    except errors.DaprError as exc:
        raise _with_state_status(exc) from None
    raise errors.DaprError(grpc.StatusCode.UNIMPLEMENTED, 404, f"method {method} /v1.0/state/{rest} is not found",
                           "ERR_NOT_FOUND")


def secrets(rt: Runtime, rest: str) -> Answer:
    """GET /v1.0/secrets/<store>/<name> and /v1.0/secrets/<store>/bulk."""
    store, _, name = rest.partition("/")
    store, name = unquote(store), unquote(name)
    if name == "bulk":
        return 200, json.dumps(rt.bulk_secrets(store)).encode(), _JSON
    return 200, json.dumps(rt.get_secret(store, name)).encode(), _JSON


def jobs(rt: Runtime, method: str, name: str, body: bytes) -> Answer:
    """/v1.0-alpha1/jobs/<name> and /v1.0/jobs/<name> (dapr/dapr pkg/api/http/jobs.go).

    POST takes {schedule, dueTime, repeats, ttl, data, failurePolicy, overwrite}; `data` is any JSON
    (stored as a google.protobuf.Value, so the trigger body is that JSON again); 204 on success.
    GET answers the Job as protojson; DELETE answers 204.
    """
    name = unquote(name)
    if method == "POST":
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise TypeError("expected a JSON object")
        except (ValueError, TypeError) as exc:
            raise _malformed(exc) from None
        if spec.get("name"):
            raise errors.DaprError(grpc.StatusCode.INVALID_ARGUMENT, 400, "Set the job name in the url only",
                                   reason="DAPR_SCHEDULER_JOB_NAME")
        job = jobs_pb2.Job(name=name)
        for field, attr in (("schedule", "schedule"), ("dueTime", "due_time"), ("ttl", "ttl")):
            if spec.get(field) is not None:
                setattr(job, attr, str(spec[field]))
        if spec.get("repeats") is not None:
            job.repeats = int(spec["repeats"])
        if "data" in spec:
            job.data.Pack(json_format.ParseDict(spec["data"], struct_pb2.Value()))
        if spec.get("failurePolicy"):
            json_format.ParseDict(spec["failurePolicy"], job.failure_policy)
        rt.jobs.schedule(job, bool(spec.get("overwrite", False)))
        return 204, b"", []
    if method == "GET":
        return 200, json_format.MessageToJson(rt.jobs.get(name), indent=None).encode(), _JSON
    if method == "DELETE":
        rt.jobs.delete(name)
        return 204, b"", []
    raise errors.DaprError(grpc.StatusCode.UNIMPLEMENTED, 405, f"method {method} is not allowed for jobs",
                           "ERR_NOT_FOUND")
