"""Which log store a target has: Loki for a cluster, the sandbox's JSON log files for the sandbox.

Both answer `console.model.logs.LogSource`, so the `logs` command, the dashboard's Logs screen and the
dead-letter triage (`reason_for`) are written once. Each is imported only for the target that has it:
the sandbox's reads its supervisor's state (and that module's imports), Loki's brings httpx.
"""

from __future__ import annotations

from console.model.logs import LogSource
from console.target import SandboxTarget, Target


def log_source(target: Target) -> LogSource:
    if isinstance(target, SandboxTarget):
        from console.sandbox.layout import SandboxLayout
        from console.sources.sandbox_logs import SandboxLogSource

        return SandboxLogSource(SandboxLayout(target.root))
    from console.sources.loki import LokiSource

    return LokiSource(target.settings.loki_url, namespace=target.namespace,
                      timeout_s=target.settings.request_timeout_s)
