"""promtool checks and unit-tests the alert rules exactly as the prod overlay renders them."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.kustomize.conftest import one
from tests.utils.required import missing

HERE = Path(__file__).parent
UNIT_TESTS = HERE / "promtool" / "todo-alerts-test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        missing("promtool not found: apt-get install -y prometheus")
    return found


def write_rules(prod, folder: Path, mutate=None) -> Path:
    """The PrometheusRule's groups as a plain Prometheus rules file (what the operator hands Prometheus)."""
    groups = copy.deepcopy(one(prod, "PrometheusRule", "todo-alerts")["spec"]["groups"])
    if mutate:
        mutate(groups)
    path = folder / "todo-alerts.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(UNIT_TESTS, folder / UNIT_TESTS.name)
    return path


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules(prod, promtool, tmp_path: Path) -> None:
    rules = write_rules(prod, tmp_path)
    result = run(promtool, "check", "rules", rules.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules(prod, promtool, tmp_path: Path) -> None:
    write_rules(prod, tmp_path)
    result = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_catch_a_broken_threshold(prod, promtool, tmp_path: Path) -> None:
    """The unit tests are not vacuous: raising the lag threshold makes them fail."""
    def raise_lag_threshold(groups):
        for group in groups:
            for rule in group["rules"]:
                if rule.get("alert") == "TodoConsumerLagHigh":
                    rule["expr"] = rule["expr"].replace("> 100", "> 100000")
    write_rules(prod, tmp_path, raise_lag_threshold)
    result = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "TodoConsumerLagHigh" in result.stdout + result.stderr
