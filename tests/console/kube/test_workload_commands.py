"""`todo-console rollout|pods|resources` against the stand-in cluster: tables, --json shapes, exit codes,
confirmations, --dry-run and --readonly, and the scenarios an operator meets at 3 a.m."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from tests.utils.kube_apiserver import StandInCluster
from tests.utils.kube_apiserver.controller import DEPLOYMENT


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def document(out: str) -> dict[str, Any]:
    doc = json.loads(out)
    assert doc["version"] == 1
    assert doc["target"] == "context (current) (todo-app)"
    return doc


@pytest.fixture(autouse=True)
def _stand_in(kubeconfig: Path) -> None:
    """Every command here reaches the stand-in through $KUBECONFIG (the `kubeconfig` fixture sets it)."""


def test_rollout_status_of_a_healthy_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rollout", "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["DEPLOYMENT", "STATE", "READY", "UP-TO-DATE", "AVAILABLE", "REVISION", "IMAGES",
                                "MESSAGE"]
    assert lines[-1].split()[:7] == ["worker", "complete", "1/1", "1", "1", "3", "todo-worker:0.1.0"]
    code, out, _ = run(capsys, "rollout", "status", "--json")
    (worker,) = [r for r in document(out)["rollouts"] if r["name"] == "worker"]
    assert document(out)["kind"] == "rollout-status"
    assert {k: worker[k] for k in ("state", "done", "problem", "desired", "revision", "progress_deadline_s")} == {
        "state": "complete", "done": True, "problem": False, "desired": 1, "revision": 3, "progress_deadline_s": 600}
    assert [c["type"] for c in worker["conditions"]] == ["Available", "Progressing"]
    code, out, _ = run(capsys, "rollout", "status", "worker")
    assert (code, out.splitlines()[0]) == (0, 'deployment "worker" successfully rolled out')
    assert "Progressing  True    NewReplicaSetAvailable" in out


def test_a_stalled_rollout_times_out_then_fails_its_progress_deadline(capsys: pytest.CaptureFixture[str],
                                                                      cluster: StandInCluster) -> None:
    cluster.stall_next_rollout("worker", "ImagePullBackOff")
    code, out, err = run(capsys, "rollout", "restart", "worker", "--yes", "--wait", "--timeout", "3")
    assert code == 1
    assert out.startswith("deployment.apps/worker restarted: restartedAt=")
    assert "Waiting for deployment \"worker\" rollout to finish: 1 old replicas are pending termination..." in out
    assert err.startswith('timed out after 3s waiting for deployment "worker"')
    cluster.advance(601)  # ten minutes without progress
    code, out, _ = run(capsys, "rollout", "status", "worker", "--wait", "--timeout", "30")
    assert (code, out.splitlines()[-1]) == (1, 'deployment "worker" exceeded its progress deadline')
    code, out, _ = run(capsys, "rollout", "status", "--json")
    (worker,) = [r for r in document(out)["rollouts"] if r["name"] == "worker"]
    assert (worker["state"], worker["problem"], worker["updated"], worker["replicas"]) == ("failed", True, 1, 2)
    code, out, _ = run(capsys, "pods", "--service", "worker")
    assert code == 1
    assert "ImagePullBackOff" in out
    assert "app: ImagePullBackOff, 0 restarts" in out


def test_a_crash_looping_pod(capsys: pytest.CaptureFixture[str], cluster: StandInCluster) -> None:
    cluster.crash_loop("backend")
    code, out, _ = run(capsys, "rollout", "status", "backend", "--wait", "--timeout", "1")
    assert code == 1  # a finished rollout that lost its replica never completes again
    code, out, _ = run(capsys, "rollout", "status")
    assert code == 1
    (backend,) = [line for line in out.splitlines() if line.startswith("backend")]
    assert backend.split()[1] == "degraded"
    code, out, _ = run(capsys, "pods", "--service", "backend")
    assert code == 1
    header, row = out.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "LAST-RESTART", "NODE", "AGE", "PROBLEM"]
    assert row.split()[1:3] == ["1/2", "CrashLoopBackOff"]
    name = row.split()[0]
    code, out, _ = run(capsys, "pods", name[:-2])  # a unique prefix is enough
    assert code == 1
    assert f"Name:           {name}" in out
    assert "Last State:     Terminated (Error, exit code 1)" in out
    assert "Liveness:       http-get http://:http/healthz delay=0s timeout=2s period=10s #success=1 #failure=3" in out
    assert "BackOff" in out
    assert "Back-off restarting failed container app" in out
    code, out, _ = run(capsys, "pods", "--json", "--service", "worker")
    (pod,) = document(out)["pods"]
    assert (code, pod["status"], pod["ready"], pod["problem"], pod["service"]) == (0, "Running", "2/2", False, "worker")
    assert {c["name"] for c in pod["containers"]} == {"app", "daprd"}


def test_history_restart_and_undo(capsys: pytest.CaptureFixture[str], cluster: StandInCluster) -> None:
    code, out, _ = run(capsys, "rollout", "history", "worker")
    assert code == 0
    assert out.splitlines()[0] == "deployment.apps/worker"
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["1", "2", "3"]
    assert "3 (current)" in out
    assert "ci: deploy 0.0.9 (e4f5a6b)" in out

    code, out, err = run(capsys, "rollout", "restart", "worker", "--readonly")
    assert (code, out) == (2, "")
    assert "refused, the console is read-only" in err
    code, _, err = run(capsys, "rollout", "restart", "worker")  # no terminal to ask on
    assert (code, err.strip()) == (2, "todo-console rollout: Restart worker in context (current) (todo-app): "
                                      "needs --yes when not run from a terminal")
    code, out, _ = run(capsys, "rollout", "restart", "worker", "--dry-run")
    assert code == 0
    assert "(dry run, nothing changed)" in out
    unchanged = cluster.store.get(DEPLOYMENT, "todo-app", "worker")
    assert unchanged is not None
    assert unchanged["metadata"]["generation"] == 1
    code, out, _ = run(capsys, "rollout", "restart", "worker", "--yes", "--wait", "--json")
    doc = document(out)
    assert (code, doc["kind"], doc["finished"], doc["rollouts"][0]["revision"], doc["generation"]) == (
        0, "rollout-restart", True, 4, 2)

    code, out, _ = run(capsys, "rollout", "undo", "worker", "--to-revision", "1", "--dry-run")
    assert (code, out.strip()) == (0, "deployment.apps/worker: roll back from revision 4 to revision 1 "
                                      "(todo-worker:0.0.8) (dry run, nothing changed)")
    code, out, _ = run(capsys, "rollout", "undo", "worker", "--to-revision", "1", "--yes", "--wait")
    assert code == 0
    assert out.splitlines()[0] == "deployment.apps/worker rolled back to revision 1 (todo-worker:0.0.8)"
    assert out.splitlines()[-1] == 'deployment "worker" successfully rolled out'
    code, out, _ = run(capsys, "rollout", "status", "--json")
    (worker,) = [r for r in document(out)["rollouts"] if r["name"] == "worker"]
    assert (worker["revision"], worker["images"][0].rsplit(":", 1)[1]) == (5, "0.0.8")
    code, _, err = run(capsys, "rollout", "undo", "worker", "--to-revision", "9", "--yes")
    assert (code, err.strip()) == (2, "todo-console rollout: unable to find specified revision 9 in history")


def test_platform_resources_and_their_problems(capsys: pytest.CaptureFixture[str], cluster: StandInCluster) -> None:
    code, out, _ = run(capsys, "resources")
    assert code == 0
    kinds = {line.split()[0] for line in out.splitlines()[1:]}
    assert kinds == {"Kafka", "KafkaNodePool", "KafkaTopic", "Component", "Subscription", "Resiliency",
                     "Configuration", "ScaledObject", "Certificate", "HorizontalPodAutoscaler"}
    cluster.topic_not_ready("task-events", "KafkaError",
                            "org.apache.kafka.common.errors.InvalidReplicationFactorException: replicas > brokers")
    cluster.certificate_expiring("todo-tls", days=4)
    code, out, _ = run(capsys, "resources", "--kind", "kafkatopics", "--kind", "cert")
    assert code == 1
    (topic,) = [line for line in out.splitlines() if " task-events " in line]
    assert topic.split()[3:5] == ["no", "NotReady"]
    assert topic.endswith("KafkaError: org.apache.kafka.common.errors.InvalidReplicationFactorException: "
                          "replicas > brokers")
    (cert,) = [line for line in out.splitlines() if line.startswith("Certificate")]
    assert "Expiring" in cert
    assert "expires in 4.0 days; renewal: Failed: The certificate request has failed" in cert
    code, out, _ = run(capsys, "resources", "--json", "--kind", "certificate")
    ((resource,), unreadable) = document(out)["resources"], document(out)["unreadable"]
    assert (code, resource["kind"], resource["state"], resource["problem"], unreadable) == (
        1, "Certificate", "Expiring", True, [])
    assert resource["days_left"] == pytest.approx(4.0, abs=0.01)
    assert resource["facts"]["issuer"] == "ClusterIssuer/letsencrypt-prod"
    code, _, err = run(capsys, "resources", "--kind", "gateway")
    assert code == 2
    assert "--kind gateway: unknown kind" in err


def test_api_errors_are_one_line_naming_the_source(capsys: pytest.CaptureFixture[str],
                                                   cluster: StandInCluster) -> None:
    """403 (a read-only ServiceAccount), 404, 409 and an API server that is gone: one line each, exit 2."""
    code, out, err = run(capsys, "resources", "--context", "stand-in-viewer")
    assert code == 2  # everything it may read is printed; what it may not is one line each
    assert "KafkaTopic" in out
    assert err.count("\n") == 1
    assert err.startswith("todo-console resources: Certificate: Kubernetes API at https://127.0.0.1:")
    assert "cannot list resource \"certificates\" in API group \"cert-manager.io\"" in err
    code, out, err = run(capsys, "rollout", "restart", "worker", "--context", "stand-in-viewer", "--yes")
    assert (code, out) == (2, "")
    assert err.strip().endswith('cannot patch resource "deployments" in API group "apps" in the namespace "todo-app" '
                                "(403 Forbidden)")
    code, _, err = run(capsys, "rollout", "status", "nope")
    assert (code, err.strip()) == (2, "todo-console rollout: no Deployment in todo-app named 'nope' (known: audit, "
                                      "backend, frontend, notification, websocket, worker)")
    code, _, err = run(capsys, "rollout", "restart", "nope", "--yes")  # read fresh from the API server: its 404
    assert (code, err.strip()) == (2, f"todo-console rollout: Kubernetes API at {cluster.server.url}: get "
                                      'deployments.apps nope in todo-app: deployments.apps "nope" not found '
                                      "(404 NotFound)")
    cluster.server.fail_next("PATCH", "deployments", 409)  # someone else wrote the Deployment first
    code, _, err = run(capsys, "rollout", "undo", "worker", "--yes")
    assert (code, err.strip()) == (2, f"todo-console rollout: Kubernetes API at {cluster.server.url}: patch "
                                      'deployments.apps worker in todo-app: Operation cannot be fulfilled on '
                                      'deployments.apps "worker": the object has been modified; please apply your '
                                      "changes to the latest version and try again (409 Conflict)")
    cluster.server.stop()
    code, out, err = run(capsys, "pods")
    assert (code, out) == (2, "")
    assert err.strip() == (f"todo-console pods: Kubernetes API at {cluster.server.url}: list pods in todo-app: "
                           "connection refused")
