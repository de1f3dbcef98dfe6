"""Pod summaries on crafted pods: kubectl's STATUS/READY/RESTARTS, probes, last state, problems, events."""

from __future__ import annotations

from typing import Any

import pytest

from console.model.kube_events import events_by_object
from console.model.pods import pod_summaries, pod_summary

PROBE = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2,
         "failureThreshold": 3}


def pod(name: str = "worker-abc-x1", *, service: str = "worker", phase: str = "Running",
        containers: list[dict[str, Any]] | None = None, ready: bool = True, **extra: Any) -> dict[str, Any]:
    statuses = containers if containers is not None else [running("app"), running("daprd")]
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "todo-app", "creationTimestamp": "2025-03-01T00:00:00Z",
                     "labels": {"app.kubernetes.io/name": service, "pod-template-hash": "abc"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "worker-abc", "controller": True}]},
        "spec": {"nodeName": "10.0.10.11", "containers": [
            {"name": "app", "image": "todo-worker:0.1.0", "livenessProbe": PROBE,
             "readinessProbe": {**PROBE, "httpGet": {"path": "/readyz", "port": 8000}}},
            {"name": "daprd", "image": "daprd:1.15", "readinessProbe": {"tcpSocket": {"port": 3500}}}]},
        "status": {"phase": phase, "podIP": "10.244.0.7", "startTime": "2025-03-01T00:00:05Z",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                  {"type": "Initialized", "status": "True"}],
                   "containerStatuses": statuses},
    }
    body["status"].update(extra)
    return body


def running(name: str, restarts: int = 0, ready: bool = True) -> dict[str, Any]:
    return {"name": name, "image": f"{name}:1", "ready": ready, "started": True, "restartCount": restarts,
            "state": {"running": {"startedAt": "2025-03-01T00:00:06Z"}}, "lastState": {}}


def crash_looping(name: str = "app", restarts: int = 7) -> dict[str, Any]:
    return {"name": name, "image": f"{name}:1", "ready": False, "started": False, "restartCount": restarts,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s restarting failed"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2025-03-01T01:00:00Z",
                                         "finishedAt": "2025-03-01T01:00:02Z"}}}


def test_a_healthy_pod() -> None:
    summary = pod_summary(pod())
    assert (summary.status, summary.ready, summary.restarts, summary.problem) == ("Running", "2/2", 0, False)
    assert (summary.service, summary.node, summary.ip, summary.owner) == ("worker", "10.0.10.11", "10.244.0.7", "worker-abc")
    app = summary.containers[0]
    assert [p.describe() for p in app.probes] == [
        "http-get http://:http/healthz delay=0s timeout=2s period=10s #success=1 #failure=3",
        "http-get http://:8000/readyz delay=0s timeout=2s period=10s #success=1 #failure=3"]
    assert summary.containers[1].probes[0].describe().startswith("tcp-socket :3500 ")


def test_a_crash_looping_container_is_the_status_and_the_problem() -> None:
    summary = pod_summary(pod(containers=[crash_looping(), running("daprd", restarts=1)], ready=False))
    assert (summary.status, summary.ready, summary.restarts) == ("CrashLoopBackOff", "1/2", 8)
    assert summary.problem
    assert summary.problem_reason == "app: CrashLoopBackOff, last exit 1 (Error), 7 restarts"
    last = summary.containers[0].last_termination
    assert last is not None
    assert (last.reason, last.exit_code) == ("Error", 1)
    assert summary.last_restart_at is not None


@pytest.mark.parametrize(("statuses", "extra", "expected", "problem"), [
    ([{"name": "app", "state": {"waiting": {"reason": "ImagePullBackOff"}}, "restartCount": 0}], {},
     "ImagePullBackOff", True),
    ([{"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}, "restartCount": 0}], {},
     "ContainerCreating", False),
    ([{"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}, "restartCount": 0}],
     {"phase": "Succeeded"}, "Completed", False),
    ([{"name": "app", "state": {"terminated": {"exitCode": 137, "signal": 9}}, "restartCount": 0}], {},
     "Signal:9", False),
    ([{"name": "app", "state": {"terminated": {"exitCode": 1, "reason": "OOMKilled"}}, "restartCount": 2}], {},
     "OOMKilled", True),
    ([], {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}, "Evicted", True),
])
def test_status_column_follows_kubectls_printer(statuses: list[dict[str, Any]], extra: dict[str, Any],
                                                 expected: str, problem: bool) -> None:
    summary = pod_summary(pod(containers=statuses, ready=False, **extra))
    assert summary.status == expected
    assert summary.problem is problem


def test_init_containers_and_terminating_pods() -> None:
    initializing = pod(containers=[], ready=False, phase="Pending")
    initializing["spec"]["initContainers"] = [{"name": "migrate"}, {"name": "seed"}]
    initializing["status"]["conditions"] = [{"type": "Initialized", "status": "False"}]
    initializing["status"]["initContainerStatuses"] = [
        {"name": "migrate", "state": {"terminated": {"exitCode": 0}}, "restartCount": 0},
        {"name": "seed", "state": {"running": {}}, "restartCount": 0}]
    assert pod_summary(initializing).status == "Init:1/2"
    failing_init = pod(containers=[], ready=False, phase="Pending")
    failing_init["spec"]["initContainers"] = [{"name": "migrate"}]
    failing_init["status"]["conditions"] = [{"type": "Initialized", "status": "False"}]
    failing_init["status"]["initContainerStatuses"] = [
        {"name": "migrate", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 4}]
    summary = pod_summary(failing_init)
    assert (summary.status, summary.restarts, summary.problem) == ("Init:CrashLoopBackOff", 4, True)
    terminating = pod()
    terminating["metadata"]["deletionTimestamp"] = "2025-03-01T02:00:00Z"
    assert pod_summary(terminating).status == "Terminating"


def test_native_sidecars_count_in_ready_and_total() -> None:
    with_sidecar = pod(containers=[running("app")])
    with_sidecar["spec"]["containers"] = with_sidecar["spec"]["containers"][:1]
    with_sidecar["spec"]["initContainers"] = [{"name": "daprd", "restartPolicy": "Always"}]
    with_sidecar["status"]["initContainerStatuses"] = [{**running("daprd", restarts=2)}]
    summary = pod_summary(with_sidecar)
    assert (summary.ready, summary.restarts, summary.status) == ("2/2", 2, "Running")


def test_summaries_filter_by_service_and_carry_recent_events_newest_first() -> None:
    events: list[dict[str, Any]] = [
        {"involvedObject": {"kind": "Pod", "name": "worker-abc-x1"}, "type": "Warning", "reason": "BackOff",
         "message": "Back-off restarting failed container", "count": 12, "firstTimestamp": "2025-03-01T01:00:00Z",
         "lastTimestamp": "2025-03-01T01:30:00Z", "source": {"component": "kubelet"}},
        {"involvedObject": {"kind": "Pod", "name": "worker-abc-x1"}, "type": "Normal", "reason": "Pulled",
         "message": "pulled", "eventTime": "2025-03-01T00:00:04.000000Z", "reportingComponent": "kubelet"},
        {"involvedObject": {"kind": "Pod", "name": "backend-x"}, "type": "Normal", "reason": "Started",
         "message": "started", "lastTimestamp": "2025-03-01T00:00:09Z"},
    ]
    pods = [pod("worker-abc-x1"), pod("backend-x", service="backend")]
    (worker,) = pod_summaries(pods, events, service="worker")
    assert [(e.reason, e.count, e.source) for e in worker.events] == [("BackOff", 12, "kubelet"), ("Pulled", 1, "kubelet")]
    assert worker.events[0].warning
    assert [s.name for s in pod_summaries(pods, events)] == ["backend-x", "worker-abc-x1"]
    assert set(events_by_object(events)) == {("Pod", "worker-abc-x1"), ("Pod", "backend-x")}
