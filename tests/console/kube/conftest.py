"""The stand-in cluster for the Kubernetes tests, and kubeconfigs and clients that reach it.

The rendered prod overlay and the TLS certificate are made once per session; each test gets its own
cluster (loading takes a fraction of a second), so a scenario one test plays never leaks into another.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from console.manifests.render import RenderError, render_overlay
from tests.utils.kube_apiserver import StandInCluster
from tests.utils.kube_apiserver.tls import ServingCert, make_serving_cert
from tests.utils.required import missing


@pytest.fixture(scope="session")
def prod_objects() -> list[dict[str, Any]]:
    try:
        return render_overlay("prod")
    except RenderError as exc:
        missing(f"kustomize cannot render the prod overlay: {exc}")


@pytest.fixture(scope="session")
def serving_cert() -> ServingCert:
    return make_serving_cert()


@pytest.fixture
def cluster(prod_objects: list[dict[str, Any]], serving_cert: ServingCert) -> Iterator[StandInCluster]:
    with StandInCluster(prod_objects, cert=serving_cert, bookmark_interval_s=0.3) as running:
        yield running


@pytest.fixture
def kubeconfig(cluster: StandInCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig for the stand-in, also in $KUBECONFIG (and no sandbox to pick up instead)."""
    path = cluster.kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("TODO_SANDBOX_DIR", str(tmp_path / "no-sandbox"))
    monkeypatch.delenv("TODO_CONSOLE_READONLY", raising=False)
    return path


@pytest.fixture
def admin(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig), context="stand-in")
    yield api
    api.close()


@pytest.fixture
def viewer(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig), context="stand-in-viewer")
    yield api
    api.close()


def raw(response: Any) -> dict[str, Any]:
    """The JSON body of a `_preload_content=False` call of the official client."""
    return json.loads(response.data)


def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call one of the official client's API methods and get the API server's JSON as it sent it."""
    return raw(method(*args, _preload_content=False, **kwargs))


def status_of(exc: client.ApiException) -> dict[str, Any]:
    return json.loads(exc.body or "{}")
