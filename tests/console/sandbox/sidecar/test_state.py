"""State conformance (statestore = state.postgresql in the cluster): ETags, concurrency, transactions.

Behaviour: https://docs.dapr.io/developing-applications/building-blocks/state-management/state-management-overview/
(ETags, first-write/last-write) and dapr/dapr pkg/api/grpc/grpc.go + components-contrib
state/postgresql (error codes and messages).
"""

from __future__ import annotations

import sqlite3

import grpc
import pytest
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Concurrency, StateItem, StateOptions

from .helpers import Sandbox, Sidecar

STORE = "statestore"


def test_save_get_delete_roundtrip_with_etags(backend_client) -> None:
    backend_client.save_state(STORE, "task-1", "v1")
    first = backend_client.get_state(STORE, "task-1")
    assert first.data == b"v1" and first.etag.isdigit()
    backend_client.save_state(STORE, "task-1", "v2")
    second = backend_client.get_state(STORE, "task-1")
    assert second.data == b"v2" and second.etag != first.etag  # every write gets a new ETag
    backend_client.delete_state(STORE, "task-1")
    gone = backend_client.get_state(STORE, "task-1")
    assert gone.data == b"" and gone.etag == ""  # a missing key is not an error


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


def test_invalid_etag_is_invalid_argument(backend_client) -> None:
    # state.postgresql parses the ETag as uint32; ETagInvalid -> codes.InvalidArgument
    backend_client.save_state(STORE, "bad-etag", "a")
    with pytest.raises(DaprGrpcError) as err:
        backend_client.save_state(STORE, "bad-etag", "b", etag="not-a-number")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid etag value" in err.value.details()


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
    assert items[0].etag and items[2].etag == ""


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
            TransactionalStateOperation("tx-b", "", etag="12345", operation_type=TransactionOperationType.delete),
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
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "can't contain '||'" in err.value.details()


def test_ttl_expires_the_value(backend_client) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/state-management/state-store-ttl/
    import time

    backend_client.save_state(STORE, "short-lived", "x", state_metadata={"ttlInSeconds": "1"})
    assert backend_client.get_state(STORE, "short-lived").data == b"x"
    deadline = time.monotonic() + 5
    while backend_client.get_state(STORE, "short-lived").data and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend_client.get_state(STORE, "short-lived").data == b""
