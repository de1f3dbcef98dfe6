"""Fixtures for the observability tests: one real sandbox with its Prometheus, shared by the package.

The sandbox is the real one (`control.plan_sandbox`: tansu, the dev sidecars, the services) with the
Prometheus it plans when the binary is there. Two things are changed for the tests' clock, through the
same `monitoring.write_config` the sandbox uses: scrapes and rule evaluation every second instead of five,
and every rule's `for` cut to 2 s (TodoScrapeTargetDown waits 5 minutes in the manifest). The rules'
expressions, labels and annotations are the manifest's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.sandbox import control, monitoring
from console.sandbox.layout import SandboxLayout
from console.sandbox.secrets import JWT_SECRET, dev_token, read_secrets
from tests.console.sandbox.conftest import require_tansu, start_sandbox, write_manifests
from tests.utils.required import missing

TEST_FOR = "2s"


@pytest.fixture
def fixture_manifests(tmp_path: Path) -> Path:
    return write_manifests(tmp_path / "manifests")


@dataclass(frozen=True)
class ObsSandbox:
    layout: SandboxLayout
    state: dict[str, Any]
    token: str

    @property
    def api(self) -> str:
        return str(self.state["urls"]["api"])

    @property
    def prometheus(self) -> str:
        return str(self.state["urls"][monitoring.NAME])

    def pid(self, name: str) -> int:
        return int((control.status(self.layout)["processes"][name])["pid"])


def quick_rules() -> dict[str, Any]:
    """The manifest's rules with every `for` at TEST_FOR."""
    rules = monitoring.alert_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = TEST_FOR
    return rules


@pytest.fixture(scope="package")
def obs_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsSandbox]:
    require_tansu()
    if monitoring.prometheus_binary() is None:
        missing("prometheus not found: apt-get install -y prometheus")
    layout = SandboxLayout(tmp_path_factory.mktemp("obs") / "sandbox")
    plan = control.plan_sandbox(layout, port_base=0)
    monitoring.write_config(monitoring.config_dir(layout), plan.processes, interval_s=1.0, rules=quick_rules())
    plan.ready_timeout_s = 120
    state = start_sandbox(layout, plan, timeout_s=125)
    secret = read_secrets(layout.secrets)[JWT_SECRET[0]][JWT_SECRET[1]]
    try:
        yield ObsSandbox(layout, state, dev_token(secret))
    finally:
        control.down(layout)
