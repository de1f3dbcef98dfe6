"""The Todo system's public HTTP APIs as a client sees them: tasks, the audit log, the backend's metrics.

Every write carries an `X-Correlation-ID` of the caller's choosing. The backend stamps it on every event the
write produces, the consumers log it, and the audit log stores it: a runbook follows one action everywhere
by that id alone, with no knowledge of the services' internals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from console.runbooks.procedures import ProcedureError
from console.runbooks.procedures.system import System

CORRELATION_HEADER = "X-Correlation-ID"
AUDIT_PAGE = 500  # the audit API's default max_page_size


class ApiError(ProcedureError):
    """A call answered something other than what it should have, or did not answer."""


@dataclass(frozen=True)
class Answer:
    """One call's outcome, kept even when it failed: a load test counts failures, it does not stop on them."""

    status: int  # 0: no answer (connection refused, timeout)
    body: Any
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class TodoClient:
    def __init__(self, system: System, *, timeout_s: float = 10.0) -> None:
        self.system = system
        self.http = httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {system.token}"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TodoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, url: str, *, json: Any = None, correlation_id: str | None = None,
             params: dict[str, Any] | None = None) -> Answer:
        headers = {CORRELATION_HEADER: correlation_id} if correlation_id else {}
        began = time.monotonic()
        try:
            response = self.http.request(method, url, json=json, headers=headers, params=params)
        except httpx.HTTPError as exc:
            return Answer(0, None, time.monotonic() - began, f"{type(exc).__name__}: {exc}")
        seconds = time.monotonic() - began
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        error = None if response.is_success else f"{response.status_code}: {_detail(body)}"
        return Answer(response.status_code, body, seconds, error)

    def _expect(self, answer: Answer, what: str) -> Any:
        if not answer.ok:
            raise ApiError(f"{what} failed: {answer.error}")
        return answer.body

    # --- tasks ------------------------------------------------------------------------------------------

    def create_task(self, title: str, *, correlation_id: str) -> dict[str, Any]:
        return self._expect(self.create(title, correlation_id=correlation_id), f"creating task {title!r}")

    def delete_task(self, task_id: str, *, correlation_id: str) -> None:
        self._expect(self.delete(task_id, correlation_id=correlation_id), f"deleting task {task_id}")

    def create(self, title: str, *, correlation_id: str) -> Answer:
        return self.call("POST", f"{self.system.endpoints.api}/tasks", json={"title": title},
                         correlation_id=correlation_id)

    def update(self, task_id: str, changes: dict[str, Any], *, correlation_id: str) -> Answer:
        return self.call("PATCH", f"{self.system.endpoints.api}/tasks/{task_id}", json=changes,
                         correlation_id=correlation_id)

    def complete(self, task_id: str, *, correlation_id: str) -> Answer:
        return self.call("POST", f"{self.system.endpoints.api}/tasks/{task_id}/complete",
                         correlation_id=correlation_id)

    def delete(self, task_id: str, *, correlation_id: str) -> Answer:
        return self.call("DELETE", f"{self.system.endpoints.api}/tasks/{task_id}", correlation_id=correlation_id)

    # --- audit ------------------------------------------------------------------------------------------

    def audit_entries(self, **filters: str) -> list[dict[str, Any]]:
        """Every audit entry matching `filters` (the token's own unless it has scope audit:read), all pages."""
        entries: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {**filters, "limit": AUDIT_PAGE, "offset": len(entries)}
            page = self._expect(self.call("GET", self.system.endpoints.audit, params=params), "reading the audit log")
            entries += page["items"]
            if not page["items"] or len(entries) >= page["total"]:
                return entries

    # --- the backend's metrics (the sandbox) --------------------------------------------------------------

    def outbox_pending(self) -> float | None:
        """`outbox_pending_events` of the backend: events committed but not yet published.

        None when the backend exports no sample of it: its outbox relay has not run (it sets the gauge), or
        this system's backend metrics are not reachable from here (a cluster).
        """
        url = self.system.endpoints.backend_metrics
        if url is None:
            return None
        from prometheus_client.parser import text_string_to_metric_families

        answer = self.http.get(url)
        if not answer.is_success:
            raise ApiError(f"reading {url} failed: {answer.status_code}")
        for family in text_string_to_metric_families(answer.text):
            if family.name == "outbox_pending_events":
                values = [s.value for s in family.samples]
                return sum(values) if values else None
        return None


def _detail(body: Any) -> str:
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:200]
    return str(body)[:200]
