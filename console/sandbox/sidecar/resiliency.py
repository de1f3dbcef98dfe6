"""Dapr Resiliency policies: timeouts, retries and circuit breakers, applied the way daprd does.

daprd wraps each attempt in the timeout, runs it through the circuit breaker, and retries the
whole thing with the retry policy's backoff (dapr/dapr pkg/resiliency/policy.go). A result that
carries a status code (HTTP from an app, gRPC from a callee) is retried only when the policy's
`matching` ranges include it (all codes when unset). Durations use Go syntax ("5s", "1m30s").
Docs: https://docs.dapr.io/operations/resiliency/policies/
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from console.sandbox.sidecar.callscope import Stop

log = logging.getLogger(__name__)
T = TypeVar("T")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float) -> float:
    """Seconds from a Go duration string ("1h2m3.5s", "500ms"); ValueError if malformed."""
    if isinstance(text, (int, float)):
        return float(text)
    s = text.strip()
    if s in ("0", ""):
        return 0.0
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


class PermanentError(Exception):
    """Stop retrying: wraps the real error (daprd's backoff.Permanent)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class StatusError(Exception):
    """An attempt that got an answer with a failing status code (daprd's resiliency.CodeError)."""

    def __init__(self, status: int, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.result = result


class BreakerOpenError(Exception):
    """gobreaker's ErrOpenState / ErrTooManyRequests: the call was not attempted."""


@dataclass(frozen=True)
class RetryPolicy:
    name: str
    policy: str = "constant"
    duration: float = 5.0
    initial_interval: float = 0.5
    max_interval: float = 60.0
    max_retries: int = -1  # -1: retry forever
    http_codes: tuple[tuple[int, int], ...] | None = None
    grpc_codes: tuple[tuple[int, int], ...] | None = None

    def delays(self) -> Iterator[float]:
        """Wait before each retry; ends after max_retries (cenkalti backoff: x1.5, +-50% jitter)."""
        n = 0
        interval = self.initial_interval
        while self.max_retries < 0 or n < self.max_retries:
            n += 1
            if self.policy == "exponential":
                yield min(self.max_interval, interval * (1 + random.uniform(-0.5, 0.5)))  # noqa: S311 (retry jitter)
                interval = min(self.max_interval, interval * 1.5)
            else:
                yield self.duration

    def retries_status(self, status: int) -> bool:
        """daprd's statusCodeNeedRetry: 0-16 are gRPC codes, 100-599 HTTP ones."""
        ranges = self.grpc_codes if 0 <= status <= 16 else self.http_codes if 100 <= status <= 599 else ()
        if ranges is None:
            return True
        return any(lo <= status <= hi for lo, hi in ranges)


def _code_ranges(text: str | None) -> tuple[tuple[int, int], ...] | None:
    if not text:
        return None
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.append((int(lo), int(hi or lo)))
    return tuple(out)


_TRIP = re.compile(r"^\s*consecutiveFailures\s*(>=|>|==)\s*(\d+)\s*$")


@dataclass
class CircuitBreaker:
    """gobreaker semantics: closed -> open after `trip`; open -> half-open after `timeout`;
    half-open lets `max_requests` calls through and closes after that many successes."""

    name: str
    max_requests: int = 1
    interval: float = 0.0
    timeout: float = 60.0
    trip: str = "consecutiveFailures > 5"
    _state: str = "closed"
    _consecutive_failures: int = 0
    _half_open_calls: int = 0
    _half_open_successes: int = 0
    _opened_at: float = 0.0
    _counts_since: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _tripped(self) -> bool:
        m = _TRIP.match(self.trip)
        if not m:
            return self._consecutive_failures > 5
        op, n = m.group(1), int(m.group(2))
        c = self._consecutive_failures
        return c >= n if op == ">=" else c > n if op == ">" else c == n

    @property
    def state(self) -> str:
        with self._lock:
            self._refresh()
            return self._state

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._state == "open" and now - self._opened_at >= self.timeout:
            self._state, self._half_open_calls, self._half_open_successes = "half-open", 0, 0
        if self._state == "closed" and self.interval > 0 and now - self._counts_since >= self.interval:
            self._consecutive_failures, self._counts_since = 0, now

    def before(self) -> None:
        with self._lock:
            self._refresh()
            if self._state == "open":
                raise BreakerOpenError("circuit breaker is open")
            if self._state == "half-open":
                if self._half_open_calls >= self.max_requests:
                    raise BreakerOpenError("too many requests")
                self._half_open_calls += 1

    def after(self, success: bool) -> None:
        with self._lock:
            if success:
                self._consecutive_failures = 0
                if self._state == "half-open":
                    self._half_open_successes += 1
                    if self._half_open_successes >= self.max_requests:
                        self._state = "closed"
                        self._counts_since = time.monotonic()
                        log.info("circuit breaker closed", extra={"breaker": self.name})
                return
            self._consecutive_failures += 1
            if self._state == "half-open" or self._tripped():
                if self._state != "open":
                    log.warning("circuit breaker opened", extra={"breaker": self.name})
                self._state, self._opened_at = "open", time.monotonic()


@dataclass
class Policy:
    """What applies to one target; an empty Policy runs the operation once, with no timeout."""

    timeout: float | None = None
    retry: RetryPolicy | None = None
    breaker: CircuitBreaker | None = None
    target: str = ""

    def run(self, operation: Callable[[float | None], T], stop: Stop | None = None) -> T:
        """Call `operation(timeout_seconds)` until it succeeds or the policy gives up.

        The operation enforces the per-attempt timeout itself (socket/future timeouts), since a
        blocking client call in a thread cannot be cancelled from outside. Raises the last error;
        a StatusError's `result` is the callee's last answer, for callers that pass it through.
        """
        delays = self.retry.delays() if self.retry else iter(())
        attempt = 0
        while True:
            attempt += 1
            try:
                if self.breaker:
                    self.breaker.before()
                try:
                    result = operation(self.timeout)
                except BaseException:
                    if self.breaker:
                        self.breaker.after(False)
                    raise
                if self.breaker:
                    self.breaker.after(True)
                return result
            except BreakerOpenError:
                raise
            except PermanentError as exc:
                raise exc.cause from None
            except Exception as exc:
                if isinstance(exc, StatusError) and self.retry and not self.retry.retries_status(exc.status):
                    raise
                delay = next(delays, None)
                if delay is None or (stop is not None and stop.is_set()):
                    raise
                log.warning("operation failed, retrying", extra={
                    "target": self.target, "attempt": attempt, "retry_in_s": round(delay, 3), "error": str(exc),
                })
                if stop is not None:
                    if stop.wait(delay):
                        raise
                else:
                    time.sleep(delay)


class Resiliency:
    """All Resiliency CRs in scope, merged, answering 'which policy for this target?'."""

    def __init__(self, specs: list[dict[str, Any]]) -> None:
        self.timeouts: dict[str, float] = {}
        self.retries: dict[str, RetryPolicy] = {}
        self.breaker_specs: dict[str, dict[str, Any]] = {}
        self.apps: dict[str, dict[str, Any]] = {}
        self.components: dict[str, dict[str, Any]] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        # Policies are fixed once the specs are read: each target's is built once, not per call
        self._policies: dict[tuple[str, ...], Policy] = {}
        self._lock = threading.Lock()
        for spec in specs:
            try:
                self._add(spec)
            except (ValueError, TypeError, AttributeError) as exc:  # daprd logs and skips a bad Resiliency
                log.error("invalid Resiliency ignored", extra={"error": str(exc)})

    def _add(self, spec: dict[str, Any]) -> None:
        """Merge one Resiliency spec; raises on malformed values before changing anything."""
        policies = spec.get("policies") or {}
        timeouts = {name: parse_duration(value) for name, value in (policies.get("timeouts") or {}).items()}
        retries = {name: self._retry(name, value or {}) for name, value in (policies.get("retries") or {}).items()}
        breakers = dict(policies.get("circuitBreakers") or {})
        for value in breakers.values():
            for key in ("interval", "timeout"):
                parse_duration((value or {}).get(key, "0s"))
            int((value or {}).get("maxRequests", 1))
        targets = spec.get("targets") or {}
        self.timeouts.update(timeouts)
        self.retries.update(retries)
        self.breaker_specs.update(breakers)
        self.apps.update(targets.get("apps") or {})
        self.components.update(targets.get("components") or {})

    @staticmethod
    def _retry(name: str, spec: dict[str, Any]) -> RetryPolicy:
        matching = spec.get("matching") or {}
        return RetryPolicy(
            name=name,
            policy=str(spec.get("policy", "constant")),
            duration=parse_duration(spec.get("duration", "5s")),
            initial_interval=parse_duration(spec.get("initialInterval", "500ms")),
            max_interval=parse_duration(spec.get("maxInterval", "60s")),
            max_retries=int(spec.get("maxRetries", -1)),
            http_codes=_code_ranges(matching.get("httpStatusCodes")),
            grpc_codes=_code_ranges(matching.get("gRPCStatusCodes")),
        )

    def _timeout(self, ref: Any) -> float | None:
        if ref is None:
            return None
        if ref in self.timeouts:
            return self.timeouts[ref]
        try:
            return parse_duration(ref)
        except ValueError:
            log.warning("unknown timeout policy", extra={"policy": ref})
            return None

    def _breaker(self, instance: str, ref: str | None) -> CircuitBreaker | None:
        """The breaker instance for `instance`, created from the `ref` template on first use."""
        if not ref or ref not in self.breaker_specs:
            return None
        with self._lock:
            if instance not in self._breakers:
                spec = self.breaker_specs[ref] or {}
                self._breakers[instance] = CircuitBreaker(
                    name=f"{ref}-{instance}",
                    max_requests=int(spec.get("maxRequests", 1)),
                    interval=parse_duration(spec.get("interval", "0s")),
                    timeout=parse_duration(spec.get("timeout", "60s")),
                    trip=str(spec.get("trip", "consecutiveFailures > 5")),
                )
            return self._breakers[instance]

    def _policy(self, scope: str, target: dict[str, Any] | None, defaults: tuple[str, ...]) -> Policy:
        target = target or {}
        retry_ref = target.get("retry")
        retry = self.retries.get(retry_ref) if retry_ref else None
        if retry is None:  # daprd's Default*RetryPolicy overrides, most specific first
            retry = next((self.retries[d] for d in defaults if d in self.retries), None)
        timeout = self._timeout(target.get("timeout"))
        if timeout is None:
            timeout = next((self.timeouts[d] for d in ("DefaultTimeoutPolicy",) if d in self.timeouts), None)
        return Policy(timeout=timeout, retry=retry,
                      breaker=self._breaker(f"{scope}/{target.get('circuitBreaker')}", target.get("circuitBreaker")),
                      target=scope)

    def app_policy(self, app_id: str) -> Policy:
        """targets.apps.<app-id> (service invocation)."""
        key = ("app", app_id)
        found = self._policies.get(key)
        if found is None:
            found = self._policies.setdefault(key, self._app_policy(app_id))
        return found

    def _app_policy(self, app_id: str) -> Policy:
        return self._policy(f"app:{app_id}", self.apps.get(app_id),
                            ("DefaultAppRetryPolicy", "DefaultRetryPolicy"))

    def component_policy(self, name: str, direction: str, component_type: str) -> Policy:
        """daprd's ComponentOutboundPolicy / ComponentInboundPolicy (pkg/resiliency/resiliency.go).

        A component named under targets.components gets exactly what its `outbound`/`inbound`
        section names (nothing when that section is absent); any other component gets the
        Default<Type>Component<Direction>…, DefaultComponent<Direction>…, DefaultComponent… or
        Default… policies, the most specific that exists, for each of retry, timeout and breaker.
        `component_type` is daprd's ComponentType: Pubsub, Statestore, Secretstore. The breaker
        instance is keyed by the component's name alone, so both directions share one, as in daprd.
        """
        key = ("component", name, direction, component_type)
        found = self._policies.get(key)
        if found is None:
            found = self._policies.setdefault(key, self._component_policy(name, direction, component_type))
        return found

    def _component_policy(self, name: str, direction: str, component_type: str) -> Policy:
        where = f"component[{name}] {'output' if direction == 'outbound' else 'input'}"
        if name in self.components:
            spec = (self.components.get(name) or {}).get(direction) or {}
            retry_ref, timeout_ref, breaker_ref = spec.get("retry"), spec.get("timeout"), spec.get("circuitBreaker")
        else:
            levels = (f"{component_type}Component{direction.title()}", f"Component{direction.title()}", "Component", "")
            retry_ref = next((f"Default{lv}RetryPolicy" for lv in levels if f"Default{lv}RetryPolicy" in self.retries),
                             None)
            timeout_ref = next((f"Default{lv}TimeoutPolicy" for lv in levels
                                if f"Default{lv}TimeoutPolicy" in self.timeouts), None)
            breaker_ref = next((f"Default{lv}CircuitBreakerPolicy" for lv in levels
                                if f"Default{lv}CircuitBreakerPolicy" in self.breaker_specs), None)
        return Policy(timeout=self._timeout(timeout_ref), retry=self.retries.get(retry_ref) if retry_ref else None,
                      breaker=self._breaker(f"component:{name}", breaker_ref), target=where)

    def describe(self) -> list[str]:
        """Names for logs/metadata."""
        return sorted(set(self.retries) | set(self.timeouts) | set(self.breaker_specs))
