"""Fixtures for provisioning tests: a test API key (made per session, never committed), the OCI stand-in,
an OCI config pointing at it, and a cluster spec for its compartment."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from console.cli import main
from provisioning.spec import DEFAULT_SPEC
from tests.provisioning.oci_standin import ApiKey, Cloud, OciStandIn

TENANCY = "ocid1.tenancy.oc1..aaaatesttenancy"
USER = "ocid1.user.oc1..aaaatestuser"
COMPARTMENT = "ocid1.compartment.oc1..aaaatestcompartment"
REGION = "eu-frankfurt-1"
ADS = ("Uocm:EU-FRANKFURT-1-AD-1", "Uocm:EU-FRANKFURT-1-AD-2", "Uocm:EU-FRANKFURT-1-AD-3")
VERSIONS = ("v1.33.1", "v1.34.1")

# Fast clocks for the tests: the stand-in's work requests take 0.1 s and the tool polls every 20 ms.
FAST = {
    "TODO_PROVISION_POLL_INTERVAL_S": "0.02",
    "TODO_PROVISION_PROGRESS_INTERVAL_S": "5",
    "TODO_PROVISION_BACKOFF_BASE_S": "0.02",
    "TODO_PROVISION_BACKOFF_MAX_S": "0.5",
    "TODO_PROVISION_WAIT_TIMEOUT_S": "60",
    "TODO_PROVISION_REQUEST_TIMEOUT_S": "30",
}


@pytest.fixture(scope="session")
def api_key() -> ApiKey:
    return ApiKey.generate(TENANCY, USER)


def make_cloud(**kwargs: object) -> Cloud:
    settings: dict[str, object] = {"tenancy": TENANCY, "compartment": COMPARTMENT, "region": REGION, "ads": ADS,
                                   "kubernetes_versions": VERSIONS, "page_size": 3, "provisioning_s": 0.01,
                                   "work_request_s": 0.1}
    settings.update(kwargs)
    return Cloud(**settings)  # type: ignore[arg-type]


@pytest.fixture
def standin(api_key: ApiKey) -> Iterator[OciStandIn]:
    server = OciStandIn(make_cloud(), api_key).start()
    yield server
    server.stop()


def oci_environment(directory: Path, api_key: ApiKey, standin: OciStandIn,
                    monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An OCI config for the test key in `directory` and the settings that point the tool at the stand-in, set in
    this process's environment (which subprocesses and runbook kernels inherit) and returned."""
    directory.mkdir()
    env = {"TODO_PROVISION_OCI_CONFIG_FILE": str(api_key.write_oci_config(directory, REGION)),
           "TODO_PROVISION_OCI_ENDPOINT": standin.url, **FAST}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def oci_env(tmp_path: Path, api_key: ApiKey, standin: OciStandIn, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for the tool (in-process via monkeypatch, or passed to a subprocess)."""
    return oci_environment(tmp_path / "oci", api_key, standin, monkeypatch)


def write_spec(path: Path, **changes: object) -> Path:
    """The Always Free example in the stand-in's compartment, with top-level or dotted changes."""
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data["compartment_id"] = COMPARTMENT
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = data
        for key in parents:
            target = target[key]
        target[leaf] = value
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "cluster.yaml")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Provision = Callable[..., Result]


@pytest.fixture
def provision(oci_env: dict[str, str], spec_file: Path, capsys: pytest.CaptureFixture[str]) -> Provision:
    """Run `todo-console provision ACTION ... --config SPEC` in-process against the stand-in."""

    def run(*args: str, config: Path = spec_file) -> Result:
        code = main(["provision", *args, "--config", str(config)])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run
