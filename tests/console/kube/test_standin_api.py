"""The stand-in API server keeps the real wire contract: checked through the official `kubernetes` client only.

What is served (and its status) must also validate against the Kubernetes and CRD schemas, so the console
is tested against objects a real cluster could hold.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.dynamic import DynamicClient

from console.manifests.crds import CrdError, schema_dir
from console.manifests.validate import ManifestValidator
from tests.console.kube.conftest import call, raw, status_of
from tests.utils.kube_apiserver import StandInCluster
from tests.utils.kube_apiserver.resources import RESOURCE_TYPES
from tests.utils.required import missing

NS = "todo-app"


def test_lists_page_with_a_consistent_snapshot(admin: client.ApiClient, cluster: StandInCluster) -> None:
    core = client.CoreV1Api(admin)
    everything = raw(core.list_namespaced_event(NS, _preload_content=False))
    first = raw(core.list_namespaced_event(NS, limit=20, _preload_content=False))
    assert len(first["items"]) == 20
    assert first["metadata"]["remainingItemCount"] == len(everything["items"]) - 20
    cluster.stall_next_rollout("worker")  # writes after the first page must not show up in the next ones
    client.AppsV1Api(admin).patch_namespaced_deployment(
        "worker", NS, {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}},
        _content_type="application/strategic-merge-patch+json")
    pages, token = [first], first["metadata"]["continue"]
    while token:
        page = raw(core.list_namespaced_event(NS, limit=20, _continue=token, _preload_content=False))
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        pages.append(page)
        token = page["metadata"].get("continue")
    names = [e["metadata"]["name"] for p in pages for e in p["items"]]
    assert names == [e["metadata"]["name"] for e in everything["items"]]
    assert "kind" not in everything["items"][0]  # built-in list items come without kind/apiVersion
    topics = call(client.CustomObjectsApi(admin).list_namespaced_custom_object, "kafka.strimzi.io", "v1", "kafka",
                  "kafkatopics")
    assert {t["kind"] for t in topics["items"]} == {"KafkaTopic"}  # custom resources keep theirs


def test_label_and_field_selectors(admin: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    workers = call(core.list_namespaced_pod, NS, label_selector="app.kubernetes.io/name=worker")["items"]
    assert [p["metadata"]["labels"]["app.kubernetes.io/name"] for p in workers] == ["worker"]
    two = call(core.list_namespaced_pod, NS, label_selector="app.kubernetes.io/name in (worker, audit),!nope")["items"]
    assert sorted(p["metadata"]["labels"]["app.kubernetes.io/name"] for p in two) == ["audit", "worker"]
    name = workers[0]["metadata"]["name"]
    assert [p["metadata"]["name"] for p in call(core.list_namespaced_pod, NS, field_selector=f"metadata.name={name}")
            ["items"]] == [name]
    events = call(core.list_namespaced_event, NS, field_selector=f"involvedObject.name={name}")["items"]
    assert {e["reason"] for e in events} >= {"Scheduled", "Started"}
    assert {e["involvedObject"]["name"] for e in events} == {name}
    rs = call(apps.list_namespaced_replica_set, NS, label_selector="app.kubernetes.io/name=worker,pod-template-hash")
    assert len(rs["items"]) == 3
    with pytest.raises(client.ApiException) as err:
        core.list_namespaced_pod(NS, field_selector="spec.containers=app")
    assert err.value.status == 400
    assert status_of(err.value)["reason"] == "BadRequest"
    assert '"spec.containers" is not a known field selector' in status_of(err.value)["message"]


def _watch_pods(admin: client.ApiClient, rv: str, until: Any, seconds: int = 15, **kwargs: Any) -> list[tuple[str, dict[str, Any]]]:
    """Pod watch events (type, raw object) through the client's own Watch until `until(events)` holds."""
    seen: list[tuple[str, dict[str, Any]]] = []
    stream = watch.Watch(return_type="object")
    for event in stream.stream(client.CoreV1Api(admin).list_namespaced_pod, NS, resource_version=rv,
                               allow_watch_bookmarks=True, timeout_seconds=seconds, **kwargs):
        seen.append((event["type"], event["raw_object"]))
        if until(seen):
            stream.stop()
    return seen


def test_watch_streams_a_rollout_with_bookmarks(admin: client.ApiClient) -> None:
    rv = call(client.CoreV1Api(admin).list_namespaced_pod, NS)["metadata"]["resourceVersion"]
    client.AppsV1Api(admin).patch_namespaced_deployment(
        "audit", NS, {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}},
        _content_type="application/strategic-merge-patch+json")
    seen = _watch_pods(admin, rv, lambda s: sum(t == "BOOKMARK" for t, _ in s) >= 2 and any(t == "DELETED" for t, _ in s))
    changes = [(t, o["metadata"]["name"]) for t, o in seen if t != "BOOKMARK"]
    new = next(name for t, name in changes if t == "ADDED")
    old = next(name for t, name in changes if t == "DELETED")
    assert new.startswith("audit-")
    assert old.startswith("audit-")
    assert new != old
    assert changes.index(("ADDED", new)) < changes.index(("DELETED", old))  # maxUnavailable 0: surge first
    versions = [int(o["metadata"]["resourceVersion"]) for _, o in seen]
    assert versions == sorted(versions)
    bookmark = next(o for t, o in seen if t == "BOOKMARK")
    assert set(bookmark) == {"kind", "apiVersion", "metadata"}


def test_a_watch_with_a_selector_sees_objects_enter_and_leave_it(admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    (pod,) = call(core.list_namespaced_pod, NS, label_selector="app.kubernetes.io/name=backend")["items"]
    name, rv = pod["metadata"]["name"], pod["metadata"]["resourceVersion"]
    for value in ("1", None):
        core.patch_namespaced_pod(name, NS, {"metadata": {"labels": {"oncall": value}}},
                                  _content_type="application/merge-patch+json")
    seen = _watch_pods(admin, rv, lambda s: len([t for t, _ in s if t != "BOOKMARK"]) >= 2, label_selector="oncall")
    assert [(t, o["metadata"]["name"]) for t, o in seen if t != "BOOKMARK"] == [("ADDED", name), ("DELETED", name)]


def test_a_too_old_resource_version_is_410_gone(admin: client.ApiClient, cluster: StandInCluster) -> None:
    core = client.CoreV1Api(admin)
    rv = call(core.list_namespaced_pod, NS)["metadata"]["resourceVersion"]
    cluster.crash_loop("worker")  # changes after rv...
    time.sleep(0.3)
    cluster.store.compact()       # ...that the server then forgets
    response: Any = core.list_namespaced_pod(NS, watch=True, resource_version=rv, timeout_seconds=5,
                                             _preload_content=False)
    (line,) = [json.loads(line) for line in response.data.decode().splitlines() if line]
    assert line["type"] == "ERROR"
    assert line["object"]["kind"] == "Status"
    assert (line["object"]["code"], line["object"]["reason"]) == (410, "Expired")
    assert line["object"]["message"].startswith(f"too old resource version: {rv} (")
    with pytest.raises(client.ApiException) as err:  # the client's Watch retries once, then gives up
        list(watch.Watch().stream(core.list_namespaced_pod, NS, resource_version=rv))
    assert err.value.status == 410


def test_error_bodies_are_status_objects(admin: client.ApiClient, viewer: client.ApiClient, kubeconfig: Path) -> None:
    apps = client.AppsV1Api(admin)
    with pytest.raises(client.ApiException) as err:
        apps.read_namespaced_deployment("nope", NS)
    assert status_of(err.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 404, "reason": "NotFound",
        "message": 'deployments.apps "nope" not found',
        "details": {"name": "nope", "group": "apps", "kind": "deployments"}}
    with pytest.raises(client.ApiException) as err:
        client.AppsV1Api(viewer).patch_namespaced_deployment("worker", NS, {"metadata": {"labels": {"a": "b"}}},
                                                             _content_type="application/merge-patch+json")
    assert (err.value.status, status_of(err.value)["reason"]) == (403, "Forbidden")
    assert status_of(err.value)["message"] == (
        'deployments.apps "worker" is forbidden: User "system:serviceaccount:todo-app:console-viewer" cannot patch '
        'resource "deployments" in API group "apps" in the namespace "todo-app"')
    stale = call(apps.read_namespaced_deployment, "worker", NS)["metadata"]["resourceVersion"]
    apps.patch_namespaced_deployment("worker", NS, {"metadata": {"labels": {"a": "1"}}},
                                     _content_type="application/merge-patch+json")
    with pytest.raises(client.ApiException) as err:
        apps.patch_namespaced_deployment("worker", NS, {"metadata": {"labels": {"a": "2"}, "resourceVersion": stale}},
                                         _content_type="application/merge-patch+json")
    assert (err.value.status, status_of(err.value)["reason"]) == (409, "Conflict")
    assert "the object has been modified" in status_of(err.value)["message"]
    with pytest.raises(client.ApiException) as err:
        client.CustomObjectsApi(admin).patch_namespaced_custom_object(
            "kafka.strimzi.io", "v1", "kafka", "kafkatopics", "reminders", {"spec": {"partitions": 2}},
            _content_type="application/strategic-merge-patch+json")
    assert err.value.status == 415
    stolen = yaml.safe_load(kubeconfig.read_text())
    stolen["users"][0]["user"]["token"] = "not-a-token"
    (kubeconfig.parent / "wrong").write_text(yaml.safe_dump(stolen))
    with pytest.raises(client.ApiException) as err:
        client.AppsV1Api(config.new_client_from_config(str(kubeconfig.parent / "wrong"))).list_namespaced_deployment(NS)
    assert (err.value.status, status_of(err.value)["reason"]) == (401, "Unauthorized")


def test_server_side_dry_run_changes_nothing(admin: client.ApiClient) -> None:
    apps = client.AppsV1Api(admin)
    before = call(apps.read_namespaced_deployment, "worker", NS)
    answer = call(apps.patch_namespaced_deployment, "worker", NS, {"metadata": {"labels": {"dry": "run"}}},
                  dry_run="All", _content_type="application/merge-patch+json")
    assert answer["metadata"]["labels"]["dry"] == "run"
    after = call(apps.read_namespaced_deployment, "worker", NS)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "dry" not in after["metadata"]["labels"]


def test_everything_served_validates_against_the_schemas(admin: client.ApiClient, cluster: StandInCluster,
                                                         tmp_path: Path) -> None:
    """Read back through discovery and the dynamic client, every kind and its synthesized status must validate:
    Kubernetes' own schemas (strict) for built-in kinds, the official CRD schemas for Strimzi, KEDA, cert-manager."""
    crds = tmp_path / "crds"  # only the CRDs the overlay uses (CloudNativePG's are most of the load time)
    crds.mkdir()
    used = {group: ["*.yaml"] for group in
            ("strimzi", "dapr", "keda", "cert-manager", "prometheus-operator", "nginx-ingress")}
    used["cnpg"] = [f"postgresql.cnpg.io_{plural}.yaml" for plural in ("clusters", "databases", "scheduledbackups")]
    for group, patterns in used.items():
        for pattern in patterns:
            for path in sorted((schema_dir() / group).glob(pattern)):
                (crds / f"{group}-{path.name}").symlink_to(path)
    try:
        validator = ManifestValidator(crds)
    except CrdError as exc:
        missing(str(exc))
    cluster.crash_loop("worker")
    cluster.stall_next_rollout("audit")
    client.AppsV1Api(admin).patch_namespaced_deployment(
        "audit", NS, {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "x"}}}}},
        _content_type="application/strategic-merge-patch+json")
    cluster.certificate_expiring("todo-tls", days=3)
    cluster.topic_not_ready("reminders", "KafkaError", "boom")
    time.sleep(0.5)  # a few controller steps: crash-looping and image-pull-failing pods, their events
    dynamic = DynamicClient(admin)
    served: list[dict[str, Any]] = []
    for resource in RESOURCE_TYPES:
        api = dynamic.resources.get(api_version=resource.api_version, kind=resource.kind)
        for item in api.get().to_dict()["items"]:
            served.append({"apiVersion": resource.api_version, "kind": resource.kind, **item})
    assert {o["kind"] for o in served} >= {"Deployment", "ReplicaSet", "Pod", "Event", "HorizontalPodAutoscaler",
                                           "Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject", "Certificate"}
    assert all(o.get("status") for o in served if o["kind"] in ("Pod", "Deployment", "KafkaTopic", "Certificate"))
    assert validator.validate_all(served) == []
