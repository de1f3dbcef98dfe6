"""verify-rollout executed by papermill against the Kubernetes stand-in (through the official client) with the
real Prometheus evaluating the cluster's real alert rules: a healthy cluster passes; a crash-looping worker
fails, naming the first cell whose check failed, with every symptom it has."""

from __future__ import annotations

from pathlib import Path

from console.runbooks.runner import run_runbook
from tests.utils.kube_apiserver import StandInCluster


def test_a_healthy_cluster_passes(cluster: StandInCluster, kubeconfig: Path, prometheus: str, tmp_path: Path) -> None:
    result = run_runbook("verify-rollout", {"target": "cluster", "kubeconfig": str(kubeconfig), "watch_s": "2"},
                         out_dir=tmp_path)
    assert result.passed, result.failure
    checks = {c.name: c.detail for c in result.checks}
    assert checks["every Deployment is available"] == "6 Deployments, 6 replicas available"
    assert checks["every readiness probe passes"] == "6 pods, 12 containers ready"  # the app and daprd in each
    assert checks["no restart count is climbing"] == "no restart in 2s"
    assert checks["no alert is firing"].endswith("alert rules evaluated, none firing")


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
    failed = {c.name: c.detail for c in result.checks if not c.ok}
    assert set(failed) == {"every Deployment is available", "every readiness probe passes",
                           "no restart count is climbing"}
    assert "CrashLoopBackOff" in failed["every readiness probe passes"]
    assert failed["no restart count is climbing"].startswith("restarted within 3s: worker-")
