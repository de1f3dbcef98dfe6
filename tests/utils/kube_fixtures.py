"""The stand-in cluster every test that needs a Kubernetes API uses, and a kubeconfig that reaches it.

Imported by the conftest of each test folder that needs them (console, notebooks). The rendered prod overlay
and the TLS certificate are made once per session; each test gets its own cluster (loading takes a fraction
of a second), so a scenario one test plays never leaks into another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
