"""State conformance (statestore = state.postgresql v2 in the cluster): ETags, concurrency, transactions.

Behaviour: https://docs.dapr.io/developing-applications/building-blocks/state-management/state-management-overview/
(ETags, first-write/last-write) and dapr/dapr pkg/api/grpc/grpc.go + components-contrib
state/postgresql (error codes and messages).
"""

from __future__ import annotations

import sqlite3
import uuid

import grpc
import pytest
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Concurrency, StateItem, StateOptions

from tests.utils.sidecars import Sandbox, Sidecar

STORE = "statestore"


def test_save_get_delete_roundtrip_with_etags(backend_client) -> None:
    backend_client.save_state(STORE, "task-1", "v1")
    first = backend_client.get_state(STORE, "task-1")
    assert first.data == b"v1"
    assert uuid.UUID(first.etag)
    backend_client.save_state(STORE, "task-1", "v2")
    second = backend_client.get_state(STORE, "task-1")
    assert second.data == b"v2"
    assert second.etag != first.etag
    backend_client.delete_state(STORE, "task-1")
    gone = backend_client.get_state(STORE, "task-1")
    assert gone.data == b""
    assert gone.etag == ""


def test_keys_are_prefixed_with_the_app_id(sandbox: Sandbox, backend_client) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/state-management/howto-share-state/
    # keyPrefix defaults to appid: "<app-id>||<key>"
    backend_client.save_state(STORE, "shared-name", "mine")
    rows = sqlite3.connect(sandbox.state_dir / "state.db").execute(
        "SELECT key FROM dapr_sandbox_state WHERE key LIKE '%shared-name'").fetchall()
    assert rows == [("backend||shared-name",)]


def test_other_apps_do_not_see_the_key(worker: Sidecar, backend_client) -> None:
    backend_client.save_state(STORE, "private", "backend-only")
    with worker.client() as other:
        assert other.get_state(STORE, "private").data == b""


def test_stale_etag_is_aborted(backend_client) -> None:
    # grpc.go getStateErrorCode: ETag mismatch -> codes.Aborted; ERR_STATE_SAVE message
    backend_client.save_state(STORE, "etag-key", "a")
    etag = backend_client.get_state(STORE, "etag-key").etag
    backend_client.save_state(STORE, "etag-key", "b", etag=etag)  # matching ETag: ok
    with pytest.raises(DaprGrpcError) as err:
        backend_client.save_state(STORE, "etag-key", "c", etag=etag)  # now stale
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert err.value.details() == ("failed saving state in state store statestore: "
                                   "possible etag mismatch. error from state store")
    assert backend_client.get_state(STORE, "etag-key").data == b"b"
    with pytest.raises(DaprGrpcError) as err:
        backend_client.delete_state(STORE, "etag-key", etag=etag)
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert err.value.details().startswith("failed deleting state with key etag-key: possible etag mismatch")


def test_an_etag_that_is_not_a_uuid_is_a_mismatch(backend_client) -> None:
    # state.postgresql v2 doSet/doDelete: uuid.Parse fails -> ETagMismatch (Aborted), with Go's reason
    backend_client.save_state(STORE, "bad-etag", "a")
    with pytest.raises(DaprGrpcError) as err:
        backend_client.save_state(STORE, "bad-etag", "b", etag="not-a-number")
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert err.value.details() == ("failed saving state in state store statestore: possible etag mismatch. "
                                   "error from state store: invalid UUID length: 12")


def test_v1_components_use_numeric_etags(tmp_path) -> None:
    # state.postgresql v1: ETag = xmin (a uint32); anything else is ETagInvalid -> InvalidArgument
    from console.sandbox.sidecar.errors import ETagInvalid, ETagMismatch
    from console.sandbox.sidecar.statestore import SetOp, open_store

    store = open_store(tmp_path, None)
    store.set(SetOp("k", b"a", uuid_etags=False))
    etag = store.get("k").etag
    assert etag is not None
    assert etag.isdigit()
    store.set(SetOp("k", b"b", etag=etag, uuid_etags=False))
    with pytest.raises(ETagMismatch):
        store.set(SetOp("k", b"c", etag=etag, uuid_etags=False))
    with pytest.raises(ETagInvalid) as err:
        store.set(SetOp("k", b"c", etag="x1", uuid_etags=False))
    assert err.value.grpc_code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(err.value) == 'invalid etag value: strconv.ParseUint: parsing "x1": invalid syntax'
    store.close()


def test_first_write_concurrency(backend_client) -> None:
    # first-write without an ETag only creates; an existing key fails ("no item was updated")
    first_write = StateOptions(concurrency=Concurrency.first_write)
    backend_client.save_state(STORE, "fw", "created", options=first_write)
    with pytest.raises(DaprGrpcError) as err:
        backend_client.save_state(STORE, "fw", "again", options=first_write)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details() == "failed saving state in state store statestore: no item was updated"
    etag = backend_client.get_state(STORE, "fw").etag
    backend_client.save_state(STORE, "fw", "updated", etag=etag, options=first_write)
    assert backend_client.get_state(STORE, "fw").data == b"updated"
    # last-write (default) without ETag overwrites
    backend_client.save_state(STORE, "fw", "last", options=StateOptions(concurrency=Concurrency.last_write))
    assert backend_client.get_state(STORE, "fw").data == b"last"


def test_bulk_get_and_bulk_save(backend_client) -> None:
    backend_client.save_bulk_state(STORE, [StateItem("b1", "one"), StateItem("b2", "two")])
    items = backend_client.get_bulk_state(STORE, ["b1", "b2", "missing"]).items
    assert [(i.key, i.data) for i in items] == [("b1", b"one"), ("b2", b"two"), ("missing", b"")]
    assert items[0].etag
    assert items[2].etag == ""


def test_transaction_is_all_or_nothing(backend_client) -> None:
    # https://docs.dapr.io/reference/api/state_api/#state-transactions
    backend_client.save_state(STORE, "tx-a", "old")
    backend_client.execute_state_transaction(STORE, [
        TransactionalStateOperation("tx-a", "new"),
        TransactionalStateOperation("tx-b", "created"),
    ])
    assert backend_client.get_state(STORE, "tx-a").data == b"new"
    with pytest.raises(DaprGrpcError) as err:
        backend_client.execute_state_transaction(STORE, [
            TransactionalStateOperation("tx-c", "should-not-exist"),
            TransactionalStateOperation("tx-b", "", etag=str(uuid.uuid4()),
                                        operation_type=TransactionOperationType.delete),
        ])
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details().startswith("error while executing state transaction: possible etag mismatch")
    assert backend_client.get_state(STORE, "tx-c").data == b""  # rolled back
    assert backend_client.get_state(STORE, "tx-b").data == b"created"


def test_unknown_store_and_bad_keys(backend_client) -> None:
    # pkg/api/errors/state.go NotFound: InvalidArgument "state store <name> is not found"
    with pytest.raises(DaprGrpcError) as err:
        backend_client.get_state("nope", "k")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "state store nope is not found"
    assert err.value.error_code() == "DAPR_STATE_NOT_FOUND"
    with pytest.raises(DaprGrpcError) as err:
        backend_client.save_state("nope", "k", "v")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(DaprGrpcError) as err:
        backend_client.get_state(STORE, "a||b")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "can't contain '||'" in err.value.details()


def test_ttl_expires_the_value(backend_client) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/state-management/state-store-ttl/
    import time

    backend_client.save_state(STORE, "short-lived", "x", state_metadata={"ttlInSeconds": "1"})
    assert backend_client.get_state(STORE, "short-lived").data == b"x"
    deadline = time.monotonic() + 5
    while backend_client.get_state(STORE, "short-lived").data and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend_client.get_state(STORE, "short-lived").data == b""


def test_http_state_and_secrets_api(backend: Sidecar, backend_client) -> None:
    # https://docs.dapr.io/reference/api/state_api/ and https://docs.dapr.io/reference/api/secrets_api/
    import httpx

    base = f"{backend.http}/v1.0/state/{STORE}"
    assert httpx.post(base, json=[{"key": "h1", "value": {"a": 1}}]).status_code == 204
    got = httpx.get(f"{base}/h1")
    assert got.status_code == 200
    assert got.json() == {"a": 1}
    assert uuid.UUID(got.headers["etag"])
    assert backend_client.get_state(STORE, "h1").data == b'{"a":1}'  # the same row over gRPC
    stale = got.headers["etag"]
    assert httpx.post(base, json=[{"key": "h1", "value": 2, "etag": stale}]).status_code == 204
    conflict = httpx.post(base, json=[{"key": "h1", "value": 3, "etag": stale}])
    assert conflict.status_code == 409
    assert conflict.json()["errorCode"] == "ERR_STATE_SAVE"
    assert httpx.delete(f"{base}/h1", headers={"If-Match": stale}).status_code == 409
    bulk = httpx.post(f"{base}/bulk", json={"keys": ["h1", "nope"]}).json()
    assert bulk[0]["key"] == "h1"
    assert bulk[0]["data"] == 2
    assert bulk[1] == {"key": "nope"}
    assert httpx.delete(f"{base}/h1").status_code == 204
    assert httpx.get(f"{base}/h1").status_code == 204  # missing key: 204, no body
    missing_store = httpx.get(f"{backend.http}/v1.0/state/nope/k")
    assert missing_store.status_code == 400
    assert missing_store.json()["errorCode"] == "ERR_STATE_STORE_NOT_FOUND"
    assert httpx.get(f"{backend.http}/v1.0/secrets/secretstore/jwt").json() == {"key": "k"}
    missing = httpx.get(f"{backend.http}/v1.0/secrets/secretstore/nope")
    assert missing.status_code == 500
    assert missing.json()["errorCode"] == "ERR_SECRET_GET"


def test_a_get_reports_when_the_value_expires(backend: Sidecar, backend_client) -> None:
    # state.postgresql Get: metadata ttlExpireTime (RFC 3339, UTC) when the row has an expiry; the
    # gRPC GetStateResponse carries it in `metadata`, the HTTP API as a `metadata.ttlExpireTime` header
    # (pkg/api/http/responses.go setResponseMetadataHeaders)
    from datetime import UTC, datetime

    import httpx
    from dapr.proto.runtime.v1 import dapr_pb2_grpc, state_pb2

    backend_client.save_state(STORE, "expiring", "x", state_metadata={"ttlInSeconds": "600"})
    backend_client.save_state(STORE, "forever", "y")
    with grpc.insecure_channel(f"127.0.0.1:{backend.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)
        expiring = stub.GetState(state_pb2.GetStateRequest(store_name=STORE, key="expiring"))
        forever = stub.GetState(state_pb2.GetStateRequest(store_name=STORE, key="forever"))
    when = datetime.strptime(expiring.metadata["ttlExpireTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 590 < (when - datetime.now(UTC)).total_seconds() <= 601
    assert dict(forever.metadata) == {}
    over_http = httpx.get(f"{backend.http}/v1.0/state/{STORE}/expiring")
    assert over_http.headers["metadata.ttlExpireTime"] == expiring.metadata["ttlExpireTime"]
    assert "metadata.ttlExpireTime" not in httpx.get(f"{backend.http}/v1.0/state/{STORE}/forever").headers


def test_an_unknown_concurrency_or_consistency_is_refused(backend: Sidecar) -> None:
    # components-contrib state.CheckRequestOptions, called by state.postgresql's Set: "unrecognized
    # concurrency model" / "unrecognized consistency model"; daprd answers 500 ERR_STATE_SAVE
    import httpx

    base = f"{backend.http}/v1.0/state/{STORE}"
    for option, value, text in (("concurrency", "second-write", "unrecognized concurrency model 'second-write'"),
                                ("consistency", "eventually", "unrecognized consistency model 'eventually'")):
        resp = httpx.post(base, json=[{"key": "opts", "value": 1, "options": {option: value}}])
        assert resp.status_code == 500
        assert resp.json() == {"errorCode": "ERR_STATE_SAVE",
                               "message": f"failed saving state in state store {STORE}: {text}"}
    assert httpx.get(f"{base}/opts").status_code == 204  # nothing was written
    assert httpx.post(base, json=[{"key": "opts", "value": 1, "options": {"concurrency": "first-write",
                                                                          "consistency": "strong"}}]).status_code == 204
