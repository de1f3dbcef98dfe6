"""provision-oke executed by papermill against the OCI stand-in (tests/provisioning/oci_standin), through the
real `oci` SDK: a dry run plans and creates nothing; a real run creates everything and ends in sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.runbooks.runner import run_runbook
from provisioning.oci_client import OciClient
from provisioning.settings import ProvisionSettings
from provisioning.spec import load_cluster_spec
from tests.provisioning.conftest import TENANCY, USER, make_cloud, oci_environment, write_spec
from tests.provisioning.oci_standin import ApiKey, OciStandIn


@pytest.fixture(scope="module")
def api_key() -> ApiKey:
    return ApiKey.generate(TENANCY, USER)


@pytest.fixture
def oci(tmp_path: Path, api_key: ApiKey, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OciStandIn, Path]]:
    """The stand-in, and the settings in this process's environment, which the runbook's kernel inherits."""
    server = OciStandIn(make_cloud(), api_key).start()
    oci_environment(tmp_path / "oci", api_key, server, monkeypatch)
    yield server, write_spec(tmp_path / "cluster.yaml")
    server.stop()


def _left(spec: Path) -> int:
    client = OciClient(load_cluster_spec(spec), ProvisionSettings())
    return len(client.discover().observed)


def test_a_dry_run_plans_everything_and_creates_nothing(oci: tuple[OciStandIn, Path], tmp_path: Path) -> None:
    _, spec = oci
    result = run_runbook("provision-oke", {"cluster_spec": str(spec)}, out_dir=tmp_path / "runs")
    assert result.passed, result.failure
    figures = {f.name: f.value for f in result.figures}
    assert (figures["to create"], figures["unchanged"], figures["to blocked"]) == (14, 0, 0)
    assert [c.name for c in result.checks] == ["apply can carry out the plan",
                                               "the tenancy allows what the plan creates"]
    assert _left(spec) == 0, "a dry run creates nothing"


def test_a_real_run_creates_everything_and_ends_in_sync(oci: tuple[OciStandIn, Path], tmp_path: Path) -> None:
    _, spec = oci
    result = run_runbook("provision-oke", {"cluster_spec": str(spec), "dry_run": "false"}, out_dir=tmp_path / "runs")
    assert result.passed, result.failure
    checks = {c.name: c.detail for c in result.checks}
    assert checks["apply made every change"].startswith("14 changes in ")
    assert checks["the environment matches the spec"] == "14 resources, all unchanged"
    assert _left(spec) == 14
