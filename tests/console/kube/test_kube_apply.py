"""Server-side apply (console.sources.kube_apply) against the stand-in, through the official client: created,
configured and unchanged told apart from the API server's answers, a dry run that stores nothing, the
read-only identity refused, and a kind the cluster does not serve refused before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config

from console.sources.health import SourceError
from console.sources.kube_apply import ServerSideApply
from tests.utils.kube_apiserver import StandInCluster
from tests.utils.kube_apiserver.resources import BY_KIND

CONFIGMAP = BY_KIND[("v1", "ConfigMap")]


def configmap(value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "release-notes", "namespace": "todo-app"},
            "data": {"release": value}}


@pytest.fixture
def applier(kubeconfig: Path) -> Iterator[ServerSideApply]:
    api = config.new_client_from_config(config_file=str(kubeconfig), context="stand-in")
    yield ServerSideApply(api)
    api.close()


def stored(cluster: StandInCluster) -> dict[str, Any] | None:
    return cluster.store.get(CONFIGMAP, "todo-app", "release-notes")


def test_apply_creates_then_configures_then_leaves_alone(cluster: StandInCluster, applier: ServerSideApply) -> None:
    assert applier.apply(configmap("0.2.0"), dry_run=True).action == "created"
    assert stored(cluster) is None, "a dry run stores nothing"
    assert applier.apply(configmap("0.2.0")).action == "created"
    first = stored(cluster)
    assert first is not None
    assert first["data"] == {"release": "0.2.0"}
    assert first["metadata"]["managedFields"][-1]["manager"] == "todo-console"
    assert applier.apply(configmap("0.2.0")).action == "unchanged"
    assert stored(cluster) == first, "a no-op apply writes nothing (same resourceVersion)"
    assert applier.apply(configmap("0.3.0"), dry_run=True).action == "configured"
    assert stored(cluster) == first
    assert applier.apply(configmap("0.3.0")).action == "configured"
    assert stored(cluster)["data"] == {"release": "0.3.0"}  # type: ignore[index]


def test_a_kind_the_cluster_does_not_serve_is_refused(applier: ServerSideApply) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "todo-app"}}
    assert applier.unserved([widget, configmap("x")]) == ["example.com/v1 Widget"]
    with pytest.raises(SourceError, match=r"the cluster does not serve example\.com/v1 Widget"):
        applier.apply(widget)


def test_the_read_only_viewer_may_not_apply(cluster: StandInCluster, kubeconfig: Path) -> None:
    api = config.new_client_from_config(config_file=str(kubeconfig), context="stand-in-viewer")
    try:
        with pytest.raises(SourceError, match=r"apply configmaps release-notes: .*cannot patch resource .*\(403 Forbidden\)"):
            ServerSideApply(api).apply(configmap("0.2.0"))
    finally:
        api.close()
    assert stored(cluster) is None
