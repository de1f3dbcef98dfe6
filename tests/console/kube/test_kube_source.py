"""The Kubernetes source against the stand-in: caches that list once and follow the watch, recover from
410 Gone and from an API server that went away, report their health per kind, and mutations that leave
the cluster exactly as kubectl's would."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from console.manifests.render import find_kubectl
from console.model.rollout import RolloutState, rollout_status
from console.sources.health import SourceError
from console.sources.kube import KubeSource
from console.sources.workloads import Unknown
from console.target import ClusterTarget
from tests.console.kube.conftest import call
from tests.utils.kube_apiserver import VIEWER_TOKEN, StandInCluster
from tests.utils.required import missing
from tests.utils.waiting import wait_until

NS = "todo-app"


def eventually(check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    return wait_until(check, timeout=timeout_s, interval=0.05, message=what)


def target(context: str | None = None, kubeconfig: Path | None = None) -> ClusterTarget:
    return ClusterTarget(context=context, kubeconfig=kubeconfig, namespace=NS, in_cluster=False)


@pytest.fixture
def source(kubeconfig: Path) -> Iterator[KubeSource]:
    kube = KubeSource(target())
    yield kube
    kube.close()


def test_a_refresh_reads_the_cache_and_the_watch_keeps_it_current(
        source: KubeSource, cluster: StandInCluster, admin: client.ApiClient) -> None:
    before = {p.name for p in source.pods("worker")}
    for _ in range(5):
        assert {p.name for p in source.pods("worker")} == before
    assert cluster.server.requests[("list", "pods")] == 1  # one list, however many refreshes
    client.AppsV1Api(admin).patch_namespaced_deployment(
        "worker", NS, {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "x"}}}}},
        _content_type="application/strategic-merge-patch+json")
    after = eventually(lambda: {p.name for p in source.pods("worker") if p.status == "Running"} - before,
                       "the restarted worker pod in the cache")
    eventually(lambda: {p.name for p in source.pods("worker")} == after, "the old worker pod gone from the cache")
    assert cluster.server.requests[("list", "pods")] == 1
    live = {p["metadata"]["name"] for p in call(client.CoreV1Api(admin).list_namespaced_pod, NS,
                                                 label_selector="app.kubernetes.io/name=worker")["items"]}
    assert after == live
    stats = source.cache("pods").stats
    assert (stats.lists, stats.relists) == (1, 0)
    assert stats.events >= 3  # ADDED, MODIFIED..., DELETED
    assert all(h.ok for h in source.health().values())


def test_a_rollout_is_worked_out_again_only_when_the_watch_replaced_its_deployment(
        source: KubeSource, admin: client.ApiClient) -> None:
    """rollouts() reuses the status of a Deployment object the cache still holds: the reuse must never hide a
    change (the scaled Deployment shows its new replicas), and must happen (the others are the same objects)."""
    before = {r.name: r for r in source.rollouts()}
    assert {r.name: r for r in source.rollouts()} == before
    desired = before["worker"].desired + 1
    client.AppsV1Api(admin).patch_namespaced_deployment("worker", NS, {"spec": {"replicas": desired}})
    after = eventually(lambda: (now := {r.name: r for r in source.rollouts()})["worker"].desired == desired and now,
                       "the scaled worker Deployment in the rollouts")
    fresh = rollout_status(call(client.AppsV1Api(admin).read_namespaced_deployment, "worker", NS))
    assert (after["worker"].desired, after["worker"].generation) == (fresh.desired, fresh.generation)
    assert all(after[name] is rollout for name, rollout in before.items() if name != "worker")


def test_every_pod_is_handed_out_again_until_the_watch_changes_one(
        source: KubeSource, admin: client.ApiClient) -> None:
    """pods() hands out the summaries it made last time while neither the pods nor the events cache changed (the
    same objects), and never hides a change: a restarted Deployment's new pod shows up."""
    before = source.pods()
    again = source.pods()
    assert again == before
    assert all(a is b for a, b in zip(again, before, strict=True))
    names = {p.name for p in before}
    client.AppsV1Api(admin).patch_namespaced_deployment(
        "worker", NS, {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "y"}}}}},
        _content_type="application/strategic-merge-patch+json")
    eventually(lambda: {p.name for p in source.pods()} - names, "the restarted worker's new pod in the pods")


def test_bookmarks_move_an_idle_cache_forward(source: KubeSource, cluster: StandInCluster,
                                              admin: client.ApiClient) -> None:
    topics = source.cache("kafkatopics")
    source.ensure("kafkatopics")
    listed = int(topics.resource_version or 0)
    client.AppsV1Api(admin).patch_namespaced_deployment("backend", NS, {"metadata": {"labels": {"x": "y"}}},
                                                        _content_type="application/merge-patch+json")
    eventually(lambda: int(topics.resource_version or 0) > listed and topics.stats.bookmarks >= 1,
               "a bookmark past the Deployment change")
    assert topics.stats.events == 0  # nothing happened to topics: only bookmarks moved it
    assert topics.stats.relists == 0


def test_the_cache_resumes_its_watch_after_the_api_server_comes_back(source: KubeSource, cluster: StandInCluster) -> None:
    pods = source.cache("pods")
    source.ensure("pods", "events")
    cluster.server.stop()
    eventually(lambda: "connection refused" in (pods.health.error or ""), "the pods cache to notice the server is gone")
    assert (pods.health.error or "").startswith(f"Kubernetes API at {cluster.server.url}: watch pods in todo-app")
    assert source.pods("worker")  # the last known state is still served while the server is away
    cluster.crash_loop("worker")  # happens while nobody watches
    time.sleep(0.3)
    cluster.server.start()
    crash = eventually(lambda: [p for p in source.pods("worker") if p.status == "CrashLoopBackOff"],
                       "the crash loop that happened while the server was away")
    assert crash[0].problem
    eventually(lambda: pods.health.ok, "the pods cache healthy again")
    assert (pods.stats.lists, pods.stats.relists) == (1, 0)  # resumed from its resourceVersion: no relist


def test_a_resource_version_compacted_away_makes_the_cache_list_again(source: KubeSource,
                                                                       cluster: StandInCluster) -> None:
    pods = source.cache("pods")
    source.ensure("pods", "events")
    cluster.server.stop()
    eventually(lambda: not pods.health.ok, "the pods cache to notice the API server is gone")
    cluster.crash_loop("worker")
    time.sleep(0.3)
    cluster.store.compact()  # the server no longer has the history the cache would resume from
    cluster.server.start()
    eventually(lambda: pods.stats.relists >= 1, "a relist after 410 Gone")
    assert eventually(lambda: [p for p in source.pods("worker") if p.status == "CrashLoopBackOff"],
                      "the crash loop, from the fresh list")
    assert pods.stats.lists == 2
    eventually(lambda: pods.health.ok, "the pods cache healthy again")


def test_closing_the_source_stops_every_cache_thread(kubeconfig: Path) -> None:
    kube = KubeSource(target())
    kube.ensure("deployments", "pods", "kafkatopics")
    informers = [kube.cache(n) for n in ("deployments", "pods", "kafkatopics")]
    assert all(i.running for i in informers)
    kube.close()
    eventually(lambda: not any(i.running for i in informers), "the cache threads to end")


def test_a_read_only_service_account_sees_what_its_role_allows(kubeconfig: Path, cluster: StandInCluster) -> None:
    kube = KubeSource(target(context="stand-in-viewer"))
    try:
        assert [r.name for r in kube.rollouts()] == ["audit", "backend", "frontend", "notification", "websocket",
                                                     "worker"]
        report = kube.resources()
        assert {r.kind for r in report.resources} >= {"Kafka", "KafkaTopic", "ScaledObject", "Subscription"}
        (kind, error), = report.unreadable  # the console-viewer Role grants no cert-manager.io resources
        assert kind == "Certificate"
        assert error.startswith(f"Kubernetes API at {cluster.server.url}: list certificates.cert-manager.io in "
                                "todo-app: certificates.cert-manager.io is forbidden: User "
                                '"system:serviceaccount:todo-app:console-viewer" cannot list resource')
        assert error.endswith("(403 Forbidden)")
        assert "\n" not in error
        with pytest.raises(SourceError, match=r'patch deployments.apps worker in todo-app: deployments.apps "worker" is '
                                              r"forbidden: .* \(403 Forbidden\)$"):
            kube.restart("worker")
    finally:
        kube.close()


def test_an_unreachable_api_server_and_a_bad_kubeconfig_are_one_line(kubeconfig: Path, cluster: StandInCluster,
                                                                      tmp_path: Path) -> None:
    cluster.server.stop()
    kube = KubeSource(target())
    try:
        with pytest.raises(SourceError) as err:
            kube.rollouts()
        assert str(err.value) == (f"Kubernetes API at {cluster.server.url}: list deployments.apps in todo-app: "
                                  "connection refused")
    finally:
        kube.close()
    with pytest.raises(SourceError, match=f"^Kubernetes API at kubeconfig {kubeconfig}: .*nope"):
        KubeSource(target(context="nope"))


def test_in_cluster_config_with_the_pods_service_account(cluster: StandInCluster, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config
    (tmp_path / "token").write_text(VIEWER_TOKEN)
    (tmp_path / "ca.crt").write_bytes(cluster.cert.ca_pem)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(cluster.server.port))
    kube = KubeSource(ClusterTarget(context=None, kubeconfig=None, namespace=NS, in_cluster=True))
    try:
        assert kube.rollout("worker").state is RolloutState.COMPLETE
    finally:
        kube.close()


def test_unknown_deployments_and_impossible_undos_are_refused(source: KubeSource) -> None:
    with pytest.raises(Unknown, match=r"no Deployment in todo-app named 'wrk' \(known: audit, backend"):
        source.rollout("wrk")
    with pytest.raises(Unknown, match="unable to find specified revision 9 in history"):
        source.undo("worker", 9)


# --- the mutations, against kubectl's own ---------------------------------------------------------------


def kubectl(kubeconfig: Path, *args: str) -> str:
    try:
        binary = find_kubectl()
    except Exception as exc:
        missing(f"kubectl not available: {exc}")
    if not shutil.which(binary) and not Path(binary).is_file():
        missing(f"kubectl not found at {binary}")
    done = subprocess.run([binary, "--kubeconfig", str(kubeconfig), "-n", NS, *args], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def settled(admin: client.ApiClient, name: str) -> dict[str, Any]:
    """The Deployment once its rollout finished, with its ReplicaSets by revision."""
    apps = client.AppsV1Api(admin)

    def done() -> Any:
        dep = call(apps.read_namespaced_deployment, name, NS)
        status = dep["status"]
        progressing = [c for c in status.get("conditions") or [] if c["type"] == "Progressing"]
        complete = (status.get("observedGeneration") == dep["metadata"]["generation"] and progressing
                    and progressing[0]["reason"] == "NewReplicaSetAvailable" and status.get("updatedReplicas") == 1
                    and status.get("replicas") == 1)
        return dep if complete else None
    dep = eventually(done, f"the {name} rollout to finish")
    sets = call(apps.list_namespaced_replica_set, NS, label_selector=f"app.kubernetes.io/name={name}")["items"]
    template = dep["spec"]["template"]
    return {
        "revision": dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "annotations": dict(dep["metadata"]["annotations"]),
        "template_annotations": dict(template["metadata"].get("annotations") or {}),
        "image": template["spec"]["containers"][0]["image"].rsplit(":", 1)[1],
        "replicasets": sorted((int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]),
                               rs["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1],
                               rs["metadata"]["annotations"].get("kubernetes.io/change-cause"),
                               rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision-history"),
                               rs["spec"]["replicas"]) for rs in sets),
    }


def without_app(state: dict[str, Any]) -> dict[str, Any]:
    """worker and audit start identical but for their names and app-specific annotations."""
    return {**state, "template_annotations": {k: v for k, v in state["template_annotations"].items()
                                              if not k.startswith("dapr.io/")}}


def test_restart_and_undo_leave_the_cluster_as_kubectls_do(source: KubeSource, kubeconfig: Path,
                                                            admin: client.ApiClient) -> None:
    """The console acts on worker, kubectl on audit (both at revision 3 with the same history): same result."""
    restarted = source.restart("worker")
    assert restarted.generation == 2
    kubectl(kubeconfig, "rollout", "restart", "deployment/audit")
    ours, theirs = settled(admin, "worker"), settled(admin, "audit")
    stamp_ours = ours["template_annotations"]["kubectl.kubernetes.io/restartedAt"]
    stamp_theirs = theirs["template_annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert abs(time.mktime(time.strptime(stamp_ours[:19], "%Y-%m-%dT%H:%M:%S"))
               - time.mktime(time.strptime(stamp_theirs[:19], "%Y-%m-%dT%H:%M:%S"))) < 120
    assert len(stamp_ours) == len(stamp_theirs)  # the same RFC 3339 rendering
    ours["template_annotations"]["kubectl.kubernetes.io/restartedAt"] = "T"
    theirs["template_annotations"]["kubectl.kubernetes.io/restartedAt"] = "T"
    assert without_app(ours) == without_app(theirs)
    assert ours["revision"] == "4"

    undo = source.undo("worker", 1)
    assert (undo.plan.from_revision, undo.plan.to_revision, undo.plan.skipped) == (4, 1, False)
    kubectl(kubeconfig, "rollout", "undo", "deployment/audit", "--to-revision=1")
    ours, theirs = settled(admin, "worker"), settled(admin, "audit")
    assert without_app(ours) == without_app(theirs)
    assert (ours["revision"], ours["image"]) == ("5", "0.0.8")
    assert ours["annotations"]["kubernetes.io/change-cause"] == "ci: deploy 0.0.8 (a1b2c3d)"
    assert (5, "0.0.8", "ci: deploy 0.0.8 (a1b2c3d)", "1", 1) in ours["replicasets"]

    again = source.undo("worker", 5)
    assert again.plan.skipped  # kubectl: "skipped rollback (current template already matches revision 5)"
    assert "skipped rollback" in kubectl(kubeconfig, "rollout", "undo", "deployment/audit", "--to-revision=5")
