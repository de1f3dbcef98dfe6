"""How the sources of one target feed each other: the one construction every command and the hub use.

- **Wiring** (which app consumes which topic, where its dead letters go, how KEDA scales it): on a cluster,
  the Subscriptions and ScaledObjects its API server holds (`KubeSource.wiring()`): what runs, not what
  the repository says should. On the sandbox, the rendered prod overlay: the sidecars load kustomize/base's
  Subscriptions, and KEDA does not run there, so the overlay's ScaledObjects say what KEDA *would* do.
- **Dead letters** get their failure reason from the target's log store when the message carries none
  (daprd writes none in the cluster): `DeadLetters(kafka, wiring, reasons=LogReasons(log_source(target)))`.
  A log store that is down costs the reasons, never the listing.

The `lag` and `dlq` commands and the hub all build their sources here, so a cluster is read one way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from console.model.logs import LogSource
from console.model.wiring import Wiring
from console.sources.health import SourceError
from console.sources.workloads import Workloads
from console.target import ClusterTarget, Target

if TYPE_CHECKING:
    from console.sources.dead_letters import DeadLetters
    from console.sources.kafka import KafkaSource

log = logging.getLogger(__name__)


def read_wiring(target: Target, workloads: Workloads | None = None) -> Wiring:
    """The wiring of `target` (see the module docstring). On a cluster, `workloads` is the open Kubernetes
    source to read it from (its caches); without one, a source is opened for the occasion and closed."""
    if not isinstance(target, ClusterTarget):
        from console.sources.wiring import rendered_wiring

        return rendered_wiring()
    from console.sources.kube import KubeSource

    if isinstance(workloads, KubeSource):
        return workloads.wiring()
    kube = KubeSource(target)
    try:
        return kube.wiring()
    finally:
        kube.close()


def open_kafka(target: Target) -> KafkaSource:
    from console.sources.kafka import source_for

    return source_for(target)


def open_logs(target: Target) -> LogSource:
    from console.sources.logs import log_source

    return log_source(target)


class LogReasons:
    """Failure reasons of dead letters from a log store that may be down.

    One lookup per event id (a reason, once found, does not change); after the store fails, no further
    lookups (50 dead letters must not mean 50 timeouts), and `error` says why the reasons are missing.
    """

    def __init__(self, logs: LogSource) -> None:
        self.logs = logs
        self.error: str | None = None
        self._found: dict[str, str] = {}

    def reason_for(self, event_id: str) -> str | None:
        if event_id in self._found:
            return self._found[event_id]
        if self.error is not None:
            return None
        try:
            reason = self.logs.reason_for(event_id)
        except SourceError as exc:
            self.error = str(exc)
            log.warning("failure reasons unavailable: %s", exc)
            return None
        if reason is not None:
            self._found[event_id] = reason
        return reason


def dead_letters(kafka: KafkaSource, wiring: Wiring, logs: LogSource | None) -> DeadLetters:
    """The dead-letter topics of `wiring` on `kafka`, with reasons from `logs` where the messages carry none."""
    from console.sources.dead_letters import DeadLetters

    return DeadLetters(kafka, wiring, reasons=LogReasons(logs) if logs is not None else None)
