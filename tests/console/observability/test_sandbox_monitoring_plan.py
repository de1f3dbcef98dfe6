"""The sandbox's Prometheus as planned: real rules from the manifest, a config promtool accepts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from console.sandbox import control, monitoring
from console.sandbox.layout import SandboxLayout
from tests.console.sandbox.test_sandbox_cli import fake_repo
from tests.utils.required import missing


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        missing("promtool not found: apt-get install -y prometheus")
    return found


def test_the_rules_are_the_manifests_groups() -> None:
    manifest = yaml.safe_load(monitoring.RULES_MANIFEST.read_text())
    rules = monitoring.alert_rules()
    assert rules["groups"] == manifest["spec"]["groups"]
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {"TodoScrapeTargetDown", "TodoDeadLetterQueueGrowing", "TodoEventDeliveryFailing"} <= names


def test_a_manifest_without_rules_is_a_plan_error(tmp_path: Path) -> None:
    empty = tmp_path / "rules.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(control.PlanError, match="no PrometheusRule groups"):
        monitoring.alert_rules(empty)


def test_planned_prometheus_scrapes_each_service_as_the_servicemonitor_labels_it(
        tmp_path: Path, fixture_manifests: Path) -> None:
    if monitoring.prometheus_binary() is None:
        missing("prometheus not found: apt-get install -y prometheus")
    layout = SandboxLayout(tmp_path / "sb")
    plan = control.plan_sandbox(layout, port_base=0, bootstrap="127.0.0.1:9092", manifests=fixture_manifests,
                                repo=fake_repo(tmp_path / "repo"))
    procs = {p.name: p for p in plan.processes}
    prom = procs[monitoring.NAME]
    assert plan.urls[monitoring.NAME] == f"http://127.0.0.1:{prom.port}"
    assert prom.kind == "monitor"
    assert prom.ready_url == f"http://127.0.0.1:{prom.port}/-/ready"
    assert f"--web.listen-address=127.0.0.1:{prom.port}" in prom.argv
    assert "--log.format=json" in prom.argv  # the sandbox's logs stay JSON lines

    config = yaml.safe_load((monitoring.config_dir(layout) / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"backend", "worker"}  # the sidecars serve no metrics (yet)
    backend = jobs["backend"]["static_configs"][0]
    assert backend["targets"] == [f"127.0.0.1:{procs['backend'].port}"]
    assert backend["labels"] == {"namespace": "todo-app", "pod": "backend", "service": "backend", "container": "app"}
    assert jobs["backend"]["metrics_path"] == "/metrics"

    result = subprocess.run([promtool(), "check", "config", "prometheus.yml"], cwd=monitoring.config_dir(layout),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    assert "rules found" in result.stdout + result.stderr


def test_the_sandbox_scrapes_as_often_as_the_clusters_servicemonitor(tmp_path: Path) -> None:
    """The console's rate windows and the alert rules are written for the cluster's interval."""
    manifest = yaml.safe_load((monitoring.RULES_MANIFEST.parent / "todo-services-servicemonitor.yaml").read_text())
    cluster = {endpoint["interval"] for endpoint in manifest["spec"]["endpoints"]}
    config = yaml.safe_load(monitoring.write_config(tmp_path / "prom", []).read_text())["global"]
    assert cluster == {"30s"}
    assert (config["scrape_interval"], config["evaluation_interval"]) == ("30000ms", "30000ms")
    assert config["scrape_timeout"] == "10000ms"  # Prometheus's default; a quick test interval caps it
    assert yaml.safe_load(monitoring.write_config(tmp_path / "quick", [], interval_s=1.0).read_text())[
        "global"]["scrape_timeout"] == "1000ms"


def test_without_the_binary_the_sandbox_plans_no_prometheus(tmp_path: Path, fixture_manifests: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    layout = SandboxLayout(tmp_path / "sb")
    plan = control.plan_sandbox(layout, port_base=0, bootstrap="127.0.0.1:9092", manifests=fixture_manifests,
                                repo=fake_repo(tmp_path / "repo"))
    assert monitoring.NAME not in {p.name for p in plan.processes}
    assert monitoring.NAME not in plan.urls
    assert "apt-get install prometheus" in str(monitoring.not_running_reason())
