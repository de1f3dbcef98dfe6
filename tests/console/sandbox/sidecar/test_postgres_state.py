"""The same state semantics on PostgreSQL (--database-url), the store backing `statestore` in the cluster."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType

from tests.utils.sidecars import Sandbox, Sidecar

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def pg_sidecar(sandbox: Sandbox, postgres_server) -> Iterator[Sidecar]:
    import psycopg

    name = f"sidecar_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    sidecar = sandbox.start("pg-app", None, extra=["--database-url", postgres_server.url(name)])
    yield sidecar
    sidecar.stop()


def test_stores_opened_together_on_a_new_database_all_succeed(postgres_server) -> None:
    """Five sidecars starting at once on `sandbox up --db postgres` each create the tables; without a lock two
    of them could fail with a unique violation on pg_type and exit (seen once in three sandbox starts)."""
    import psycopg

    from console.sandbox.sidecar.statestore import open_store

    for _ in range(5):
        name = f"race_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(postgres_server.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        start = threading.Barrier(6)

        def open_one(url: str = postgres_server.url(name), barrier: threading.Barrier = start) -> None:
            barrier.wait()
            open_store(Path("/nonexistent"), url).close()

        with ThreadPoolExecutor(6) as pool:
            for future in [pool.submit(open_one) for _ in range(6)]:
                future.result()  # raises the first failure


def test_postgres_store_etags_and_transactions(pg_sidecar: Sidecar) -> None:
    with pg_sidecar.client() as client:
        client.save_state("statestore", "k", "v1")
        etag = client.get_state("statestore", "k").etag
        client.save_state("statestore", "k", "v2", etag=etag)
        with pytest.raises(DaprGrpcError) as err:
            client.save_state("statestore", "k", "v3", etag=etag)
        assert err.value.code() == grpc.StatusCode.ABORTED
        assert client.get_state("statestore", "k").data == b"v2"
        with pytest.raises(DaprGrpcError):
            client.execute_state_transaction("statestore", [
                TransactionalStateOperation("new", "x"),
                TransactionalStateOperation("k", "", etag=etag, operation_type=TransactionOperationType.delete),
            ])
        assert client.get_state("statestore", "new").data == b""
        client.delete_state("statestore", "k")
        assert client.get_state("statestore", "k").data == b""
