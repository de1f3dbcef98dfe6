"""verify-rollout executed by papermill against the Kubernetes stand-in (through the official client), with the
real Prometheus evaluating the cluster's real alert rules at TODO_CONSOLE_PROMETHEUS_URL.

One run covers both sides: the worker crash-loops, so the Deployment, probe and restart checks must fail,
the first of them naming its cell; Prometheus answers with every rule loaded and nothing firing (no
kube-state-metrics scrapes the stand-in), so the alert check must pass. The healthy pass is the sandbox's
(test_operator_runbooks.py), where the same four checks hold.
"""

from __future__ import annotations

from pathlib import Path

from console.runbooks.runner import run_runbook
from tests.utils.kube_apiserver import StandInCluster


def test_a_crash_looping_worker_fails_naming_the_cell(cluster: StandInCluster, kubeconfig: Path, prometheus: str,
                                                       tmp_path: Path) -> None:
    cluster.crash_loop("worker")
    result = run_runbook("verify-rollout", {"target": "cluster", "kubeconfig": str(kubeconfig), "watch_s": "3"},
                         out_dir=tmp_path)
    assert not result.passed
    assert result.failure is not None
    assert result.failure.cell == 'cell 4/8 "every Deployment available"'
    assert result.failure.reason.startswith('every Deployment is available: worker: deployment "worker" rolled out, '
                                            "but 1 of 1 replicas are unavailable")
    checks = {c.name: (c.ok, c.detail) for c in result.checks}
    assert {name for name, (ok, _) in checks.items() if not ok} == {
        "every Deployment is available", "every readiness probe passes", "no restart count is climbing"}
    assert "worker-" in checks["every readiness probe passes"][1]
    assert "CrashLoopBackOff" in checks["every readiness probe passes"][1]
    assert checks["every readiness probe passes"][1].count(" ready, ") == 1, "only the worker's pod is named"
    assert checks["no restart count is climbing"][1].startswith("restarted within 3s: worker-")
    ok, detail = checks["no alert is firing"]
    assert ok, detail
    assert detail.endswith("alert rules evaluated, none firing")
