"""The state API as daprd serves it: which stores the app has, key prefixes, the Resiliency policy, errors.

daprd runs every state call under the store's outbound policy (dapr/dapr pkg/api/grpc/grpc.go and
pkg/api/http/http.go: `ComponentOutboundPolicy(store, resiliency.Statestore)`): a per-attempt
timeout, retries and a circuit breaker. How failures are treated depends on the call:
- saves and bulk deletes go through PerformBulkStoreOperation (pkg/components/state/bulk.go): an
  ETag error is wrapped in backoff.Permanent and never retried, any other failure is; with several
  items, only the items that failed with something else than an ETag error are tried again;
- a get, a bulk get, a single delete and a transaction run in the plain runner: every failure is
  retried, ETag mismatches included;
- the breaker (sony/gobreaker) counts every failed attempt, ETag errors included, and while it is
  open a call fails at once with "circuit breaker is open" (pkg/resiliency/policy.go).
So a first-write conflict on state.postgresql ("no item was updated", a plain error) is retried for
the whole retry policy and counts towards the breaker. Stores: the app's in-scope state Components;
with none at all a call is "state store X is not configured", else an unknown name is "not found"
(pkg/api/errors/state.go). Keys carry the component's keyPrefix (pkg/components/state/state_config.go).
Docs: https://docs.dapr.io/operations/resiliency/targets/#components
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from console.sandbox.sidecar import errors
from console.sandbox.sidecar.callscope import CallScope
from console.sandbox.sidecar.errors import ETagError, StateStoreError
from console.sandbox.sidecar.resiliency import BreakerOpenError, PermanentError, Resiliency
from console.sandbox.sidecar.resources import Component
from console.sandbox.sidecar.statestore import DeleteOp, SetOp, SqlStateStore, StateEntry

T = TypeVar("T")
SEPARATOR = "||"


class DeadlineExceeded(StateStoreError):
    """An attempt that outlived the policy's timeout (Go's context.DeadlineExceeded)."""

    def __init__(self) -> None:
        super().__init__("context deadline exceeded")


@dataclass
class StateApi:
    """The app's state stores (name -> Component) over one shared database."""

    app_id: str
    namespace: str
    stores: dict[str, Component]
    backend: SqlStateStore
    resiliency: Resiliency
    stop: threading.Event

    # ---- which store, which key ------------------------------------------------------------------
    def check_store(self, store: str, *, http: bool = False) -> Component:
        """The Component, or daprd's NotConfigured / NotFound error (the HTTP API adds the app-id)."""
        app_id = self.app_id if http else ""
        if not self.stores:
            raise errors.state_store_not_configured(store, app_id)
        comp = self.stores.get(store)
        if comp is None:
            raise errors.state_store_not_found(store, app_id)
        return comp

    def key(self, store: str, key: str) -> str:
        """The stored key: daprd's GetModifiedStateKey with the component's keyPrefix strategy."""
        if SEPARATOR in key:
            raise errors.state_illegal_key(key)
        strategy = self.stores[store].metadata.get("keyPrefix", "appid")
        if strategy.lower() == "none":
            return key
        if strategy.lower() == "name":
            return f"{store}{SEPARATOR}{key}"
        if strategy.lower() == "appid":
            return f"{self.app_id}{SEPARATOR}{key}"
        if strategy.lower() == "namespace":
            return f"{self.namespace}.{self.app_id}{SEPARATOR}{key}"
        return f"{strategy}{SEPARATOR}{key}"

    def _uuid_etags(self, store: str) -> bool:
        """state.postgresql v2 (and anything but v1) uses UUID ETags."""
        return self.stores[store].version != "v1"

    # ---- running under the policy ----------------------------------------------------------------
    def _run(self, store: str, operation: Callable[[], T], call: CallScope | None) -> T:
        """One call under the store's outbound policy; the attempt's timeout is checked when it returns.

        A database call in a thread cannot be abandoned as daprd abandons the goroutine, so an attempt
        that took longer than the policy's timeout fails as a timeout once it is back (its write, like
        daprd's, may have happened) and is retried like any other failure.
        """
        policy = self.resiliency.component_policy(store, "outbound", "Statestore")

        def attempt(timeout: float | None) -> T:
            started = time.monotonic()
            result = operation()
            if timeout is not None and time.monotonic() - started > timeout:
                raise DeadlineExceeded()
            return result

        return policy.run(attempt, stop=call if call is not None else self.stop)

    def _run_bulk(self, store: str, ops: list[SetOp] | list[DeleteOp], execute: Callable[[SetOp | DeleteOp], None],
                  call: CallScope | None) -> None:
        """PerformBulkStoreOperation: ETag errors are permanent; with several items only the others retry."""
        pending: list[SetOp | DeleteOp] = list(ops)

        def operation() -> None:
            nonlocal pending
            if len(pending) == 1:
                try:
                    execute(pending[0])
                except ETagError as exc:
                    raise PermanentError(exc) from None
                return
            failures: list[tuple[SetOp | DeleteOp, StateStoreError]] = []
            for op in pending:
                try:
                    execute(op)
                except StateStoreError as exc:
                    failures.append((op, exc))
            if not failures:
                return
            retry = [op for op, exc in failures if not isinstance(exc, ETagError)]
            if not retry:
                raise PermanentError(errors.bulk_etag_error([exc for _, exc in failures]))
            pending = retry
            raise errors.JoinedStoreError([exc for _, exc in failures])

        self._run(store, operation, call)

    # ---- the API ---------------------------------------------------------------------------------
    def get(self, store: str, key: str, call: CallScope | None = None, *, http: bool = False) -> StateEntry:
        self.check_store(store, http=http)
        full = self.key(store, key)
        try:
            return self._run(store, lambda: self.backend.get(full), call)
        except (StateStoreError, BreakerOpenError) as exc:
            raise errors.state_get(key, store, str(exc)) from None

    def bulk_get(self, store: str, keys: list[str], call: CallScope | None = None,
                 *, http: bool = False) -> list[StateEntry]:
        """One store call for all keys (state.postgresql's BulkGet is one query), in the keys' order."""
        self.check_store(store, http=http)
        full = [self.key(store, k) for k in keys]
        try:
            return self._run(store, lambda: [self.backend.get(k) for k in full], call)
        except (StateStoreError, BreakerOpenError) as exc:
            raise errors.state_bulk_get(str(exc)) from None

    def save(self, store: str, ops: list[SetOp], call: CallScope | None = None, *, http: bool = False) -> None:
        self.check_store(store, http=http)
        if not ops:
            return
        for op in ops:
            if not op.key:
                raise errors.state_key_empty()
        prefixed = [replace(op, key=self.key(store, op.key), uuid_etags=self._uuid_etags(store)) for op in ops]
        try:
            self._run_bulk(store, prefixed, lambda op: self.backend.set(op), call)  # type: ignore[arg-type]
        except (StateStoreError, BreakerOpenError) as exc:
            raise errors.state_save(store, exc) from None

    def delete(self, store: str, key: str, etag: str | None, call: CallScope | None = None,
               *, http: bool = False) -> None:
        self.check_store(store, http=http)
        op = DeleteOp(self.key(store, key), etag, self._uuid_etags(store))
        try:
            self._run(store, lambda: self.backend.delete(op), call)
        except (StateStoreError, BreakerOpenError) as exc:
            raise errors.state_delete(key, exc) from None

    def bulk_delete(self, store: str, items: list[tuple[str, str | None]], call: CallScope | None = None) -> None:
        self.check_store(store)
        ops = [DeleteOp(self.key(store, key), etag, self._uuid_etags(store)) for key, etag in items]
        if not ops:
            return
        try:
            self._run_bulk(store, ops, lambda op: self.backend.delete(op), call)  # type: ignore[arg-type]
        except (StateStoreError, BreakerOpenError) as exc:
            raise errors.state_bulk_delete(store, exc) from None

    def transaction(self, store: str, ops: list[tuple[str, SetOp]], call: CallScope | None = None,
                    *, http: bool = False) -> None:
        """ops: ("upsert", SetOp) or ("delete", SetOp-with-key-and-etag); all or nothing."""
        self.check_store(store, http=http)
        converted: list[SetOp | DeleteOp] = []
        for kind, op in ops:
            full = self.key(store, op.key)
            if kind == "upsert":
                converted.append(replace(op, key=full, uuid_etags=self._uuid_etags(store)))
            elif kind == "delete":
                converted.append(DeleteOp(full, op.etag, self._uuid_etags(store)))
            else:
                raise errors.state_operation_unsupported(kind)
        try:
            self._run(store, lambda: self.backend.multi(converted), call)
        except (StateStoreError, BreakerOpenError) as exc:
            raise errors.state_transaction(exc) from None
