"""Which log store a target has: Loki for a cluster, the sandbox's JSON log files for the sandbox.

Both answer `console.model.logs.LogSource`, so the `logs` command, the dashboard's Logs screen and the
dead-letter triage (`reason_for`) are written once.
"""

from __future__ import annotations

from console.model.logs import LogSource
from console.sandbox.layout import SandboxLayout
from console.sources.loki import LokiSource
from console.sources.sandbox_logs import SandboxLogSource
from console.target import SandboxTarget, Target


def log_source(target: Target) -> LogSource:
    if isinstance(target, SandboxTarget):
        return SandboxLogSource(SandboxLayout(target.root))
    return LokiSource(target.settings.loki_url, namespace=target.namespace,
                      timeout_s=target.settings.request_timeout_s)
