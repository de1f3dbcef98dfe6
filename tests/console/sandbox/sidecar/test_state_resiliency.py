"""State calls under the store's Resiliency policy (targets.components.<store>.outbound), as daprd runs them.

dapr/dapr pkg/api/grpc/grpc.go and pkg/api/http/http.go run every state call through
`ComponentOutboundPolicy(store, resiliency.Statestore)`. Saves (and bulk deletes) go through
pkg/components/state/bulk.go PerformBulkStoreOperation, which wraps ETag errors in backoff.Permanent:
never retried. Every other failure is retried, among them state.postgresql's first-write conflict
"no item was updated" (components-contrib state/postgresql/v2 doSet: a plain error), and a single
delete runs in the plain runner, where even an ETag mismatch is retried. The breaker (sony/gobreaker,
pkg/resiliency/breaker) counts every failed attempt; once open, calls fail at once with
"circuit breaker is open" until its timeout lets a trial call through.
Docs: https://docs.dapr.io/operations/resiliency/targets/#components
"""

from __future__ import annotations

import grpc
import httpx
import pytest
from dapr.clients.grpc._state import Concurrency, StateOptions

from tests.utils.sidecars import Sidecar
from tests.utils.waiting import wait_until

# The shared resources (shared_resources.py): `statestore` retries twice, 20 ms apart; `guarded` does
# too, and its breaker opens after 3 consecutive failures, for 1 s.
FIRST_WRITE = StateOptions(concurrency=Concurrency.first_write)


def _retries(sidecar: Sidecar, store: str) -> int:
    """How many retries the store's policy has made so far (the policy logs each one)."""
    return sum(1 for line in sidecar.logs() if line.get("msg") == "operation failed, retrying"
               and line.get("target") == f"component[{store}] output")


def test_etag_errors_fail_at_once_other_failures_are_retried(backend: Sidecar) -> None:
    with backend.client() as client:
        client.save_state("statestore", "policed", "a")
        etag = client.get_state("statestore", "policed").etag
        client.save_state("statestore", "policed", "b", etag=etag)
        before = _retries(backend, "statestore")
        with pytest.raises(grpc.RpcError) as err:  # a stale ETag on a save: permanent, not retried
            client.save_state("statestore", "policed", "c", etag=etag)
        assert err.value.code() == grpc.StatusCode.ABORTED
        assert _retries(backend, "statestore") == before
        with pytest.raises(grpc.RpcError) as err:  # a first-write conflict: retried for the whole policy
            client.save_state("statestore", "policed", "d", options=FIRST_WRITE)
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert err.value.details() == "failed saving state in state store statestore: no item was updated"
        assert _retries(backend, "statestore") == before + 2
        with pytest.raises(grpc.RpcError) as err:  # a single delete runs in the plain runner: retried too
            client.delete_state("statestore", "policed", etag=etag)
        assert err.value.code() == grpc.StatusCode.ABORTED
        assert _retries(backend, "statestore") == before + 4
        assert client.get_state("statestore", "policed").data == b"b"


def test_failures_open_the_stores_circuit_breaker(backend: Sidecar) -> None:
    with backend.client() as client:
        client.save_state("guarded", "once", "first")
        with pytest.raises(grpc.RpcError) as err:  # three failed attempts: the breaker trips (>= 3)
            client.save_state("guarded", "once", "again", options=FIRST_WRITE)
        assert err.value.details() == "failed saving state in state store guarded: no item was updated"
        with pytest.raises(grpc.RpcError) as err:  # open: even a read fails without reaching the store
            client.get_state("guarded", "once")
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert err.value.details() == "fail to get once from state store guarded: circuit breaker is open"
        over_http = httpx.post(f"{backend.http}/v1.0/state/guarded", json=[{"key": "other", "value": 1}])
        assert over_http.status_code == 500
        assert over_http.json() == {"errorCode": "ERR_STATE_SAVE",
                                    "message": "failed saving state in state store guarded: circuit breaker is open"}
        client.save_state("statestore", "elsewhere", "fine")  # another store has its own breaker

        def half_open_then_closed() -> bool:  # after the breaker's timeout one trial call goes through
            try:
                return client.get_state("guarded", "once").data == b"first"
            except grpc.RpcError:
                return False
        wait_until(half_open_then_closed, 10, 0.2, "the breaker to let a call through again")
        client.save_state("guarded", "other", "works")
