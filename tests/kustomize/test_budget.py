"""The Always Free budget of the rendered prod overlay, and the budget arithmetic itself."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from pathlib import Path

import pytest

from console.cli import CliError
from console.commands import budget as budget_cmd
from console.manifests import budget as model
from console.manifests.cluster_spec import (
    DEFAULT_SPEC,
    DEFAULT_SPEC_PATH,
    ClusterSpec,
    ClusterSpecError,
    NodePool,
    load_cluster_spec,
)
from tests.kustomize.conftest import one

SPEC_YAML = DEFAULT_SPEC_PATH.read_text()


def with_pool(**changes) -> ClusterSpec:
    return dataclasses.replace(DEFAULT_SPEC, node_pool=dataclasses.replace(DEFAULT_SPEC.node_pool, **changes))


@pytest.fixture(scope="module")
def plan(prod) -> model.Budget:
    return model.compute(prod, overlay="prod", spec=DEFAULT_SPEC)


def test_prod_fits_always_free_at_every_moment(plan: model.Budget) -> None:
    assert plan.fits, model.format_report(plan)
    for scale in model.Scale:
        used = plan.usage(scale)
        assert used.cpu_m <= plan.allocatable_cpu_m, scale
        assert used.mem_mib <= plan.allocatable_mem_mib, scale
        assert plan.unplaced(scale) == [], scale
    assert plan.storage_gb <= model.CAPACITY_STORAGE_GB


def test_allocatable_is_capacity_minus_okes_reservation(plan: model.Budget) -> None:
    """Oracle's kube-reserved for a 2 OCPU / 12 GB node: 60+10 m CPU; 4x255 + 4x205 + 4x105 MiB, + 100 MiB eviction."""
    assert (plan.reserved.cpu_m, plan.reserved.mem_mib) == (70, 2360)
    assert plan.allocatable_cpu_m == 2 * (2000 - 70)
    assert plan.allocatable_mem_mib == 2 * (12 * 1024 - 2360)
    big = model.node_reserved(NodePool("VM.Standard.A1.Flex", 1, 4, 24, 50))
    assert (big.cpu_m, big.mem_mib) == (60 + 10 + 5 + 5, 4 * 255 + 4 * 205 + 8 * 105 + 8 * 60 + 100)


def test_rollout_counts_every_surge_pod_with_its_sidecar(plan: model.Budget) -> None:
    apps = [p for p in plan.pods if p.group == "apps"]
    assert {p.name for p in apps} == {"backend", "worker", "notification", "websocket", "audit", "frontend"}
    backend = next(p for p in apps if p.name == "backend")
    assert (backend.min_replicas, backend.max_replicas, backend.surge) == (1, 3, 1), "HPA 1..3, maxSurge 1"
    assert (backend.cpu_m, backend.sidecar_cpu_m) == (100 + 25, 25), "app container + daprd annotations"
    rollout, maximum = plan.usage(model.Scale.ROLLOUT), plan.usage(model.Scale.MAXIMUM)
    assert rollout.cpu_m - maximum.cpu_m == sum(p.cpu_m * p.surge for p in apps)
    assert rollout.pods - maximum.pods == len(apps)


def test_budget_counts_postgres_boot_volumes_and_one_scheduler(plan: model.Budget) -> None:
    names = {p.name for p in plan.pods}
    assert {"todo-pg", "todo-kafka-dual-role", "dapr-scheduler-server", "prometheus", "loki", "fluent-bit",
            "metrics-server", "keda-operator", "nginx-ingress-controller", "cnpg-controller-manager", "calico-node",
            "kube-flannel", "coredns"} <= names
    assert next(p for p in plan.pods if p.name == "todo-pg").mem_mib == 384
    assert next(p for p in plan.pods if p.name == "calico-node").per_node
    assert [(v.name, v.billed_gb) for v in plan.volumes] == [("todo-pg-1", 50), ("dapr-scheduler-data-dir", 50)]
    assert plan.boot_volumes_gb == 100
    assert plan.storage_gb == 200


def test_a_third_scheduler_volume_or_a_bigger_boot_volume_breaks_storage(prod) -> None:
    assert not model.compute(prod, overlay="prod", spec=with_pool(boot_volume_gb=60)).fits_storage
    objs = [*copy.deepcopy(prod), {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "extra", "namespace": "todo-app"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    result = model.compute(objs, overlay="prod", spec=DEFAULT_SPEC)
    assert result.storage_gb == 250, "a 1 GiB claim is billed 50 GB"
    assert not result.fits


def test_a_rollout_that_only_fits_raw_capacity_does_not_fit(prod, plan: model.Budget) -> None:
    """Requests that fit 4000m of capacity but not the allocatable during a rollout fail the budget."""
    headroom = plan.allocatable_cpu_m - plan.usage(model.Scale.ROLLOUT).cpu_m
    objs = copy.deepcopy(prod)
    dep = one(objs, "Deployment", "worker")
    per_pod = headroom // 4 + 20  # worker runs 3 replicas + 1 surge pod at the rollout
    app = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    app["cpu"] = f"{int(app['cpu'].rstrip('m')) + per_pod}m"
    result = model.compute(objs, overlay="prod", spec=DEFAULT_SPEC)
    assert result.fits_at(model.Scale.MINIMUM)
    assert not result.fits_at(model.Scale.ROLLOUT)
    assert result.usage(model.Scale.ROLLOUT).cpu_m <= DEFAULT_SPEC.node_pool.size * DEFAULT_SPEC.node_pool.cpu_m_per_node
    assert not result.fits


def test_a_pod_bigger_than_any_node_is_unplaced(prod) -> None:
    objs = copy.deepcopy(prod)
    one(objs, "KafkaNodePool", "dual-role")["spec"]["resources"]["requests"]["memory"] = "11Gi"
    result = model.compute(objs, overlay="prod", spec=DEFAULT_SPEC)
    assert "kafka/todo-kafka-dual-role" in result.unplaced(model.Scale.MINIMUM)
    assert not result.fits


def test_a_node_pool_beyond_always_free_does_not_fit(prod) -> None:
    assert not model.compute(prod, overlay="prod", spec=with_pool(size=3)).always_free_pool
    assert not model.compute(prod, overlay="prod", spec=with_pool(shape="VM.Standard.E5.Flex", ocpus_per_node=1)).fits


def test_missing_requests_fall_back_to_the_limitrange_default(prod) -> None:
    objs = copy.deepcopy(prod)
    dep = one(objs, "Deployment", "worker")
    del dep["spec"]["template"]["spec"]["containers"][0]["resources"]
    for key in [k for k in dep["spec"]["template"]["metadata"]["annotations"] if k.startswith("dapr.io/sidecar-")]:
        del dep["spec"]["template"]["metadata"]["annotations"][key]
    worker = next(p for p in model.workload_pods(objs) if p.name == "worker")
    assert (worker.cpu_m, worker.mem_mib) == (50 + 50, 64 + 64)
    assert "LimitRange default in todo-app" in worker.source


def test_percentage_surge_rounds_up() -> None:
    dep = {"kind": "Deployment", "spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%"}}}}
    assert model._surge(dep, 3) == 1
    assert model._surge({"kind": "Deployment", "spec": {"strategy": {"type": "Recreate"}}}, 3) == 0


# ------------------------------------------------------------------ the cluster spec
def test_cluster_spec_is_read_from_the_provisioning_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC_YAML.replace("size: 2", "size: 1").replace("ocpus_per_node: 2", "ocpus_per_node: 4")
                    .replace("memory_gb_per_node: 12", "memory_gb_per_node: 24"))
    spec = load_cluster_spec(path)
    assert spec.node_pool == NodePool("VM.Standard.A1.Flex", 1, 4.0, 24.0, 50)
    assert (spec.api_endpoint_subnet_cidr, spec.cni, spec.source) == ("10.0.0.0/28", "FLANNEL_OVERLAY", str(path))
    assert not spec.from_defaults


def test_without_a_spec_file_the_provisioning_example_is_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC_YAML)
    assert dataclasses.replace(load_cluster_spec(path), source=DEFAULT_SPEC.source) == DEFAULT_SPEC
    assert DEFAULT_SPEC.from_defaults


@pytest.mark.parametrize(("text", "message"), [
    (SPEC_YAML.replace("  size: 2\n", ""), "node_pool.size: required"),
    (SPEC_YAML.replace("size: 2", "size: two"), "node_pool.size: Input should be a valid integer"),
    (SPEC_YAML.replace("size: 2", "size: 0"), "node_pool.size: Input should be greater than or equal to 1"),
    (SPEC_YAML.replace("size: 2", "size: 3"), "over the Always Free"),
    ("- a list\n", "spec.yaml: "),
    ("a: [\n", "not valid YAML"),
])
def test_a_bad_cluster_spec_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(ClusterSpecError, match=message):
        load_cluster_spec(path)


# ------------------------------------------------------------------ the command
def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"overlay": "prod", "json": False, "cluster_spec": None, **kw})


def test_cli_prints_the_report_and_json(prod, monkeypatch, capsys) -> None:
    monkeypatch.setattr(budget_cmd, "render_overlay", lambda name: prod)
    assert budget_cmd.run(_args(json=True)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is True
    assert data["allocatable"]["cpu_m"] == 3860
    assert data["scales"]["rollout"]["cpu_m"] > data["scales"]["maximum"]["cpu_m"] > data["scales"]["minimum"]["cpu_m"]
    assert data["storage"]["boot_volumes_gb"] == 100
    assert budget_cmd.run(_args()) == 0
    out = capsys.readouterr().out
    assert "fits the Always Free allowance" in out
    assert "rollout at maximum scale" in out


def test_cli_names_the_spec_file_or_the_defaults(prod, monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setattr(budget_cmd, "render_overlay", lambda name: prod)
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC_YAML.replace("size: 2", "size: 1").replace("ocpus_per_node: 2", "ocpus_per_node: 4")
                    .replace("memory_gb_per_node: 12", "memory_gb_per_node: 24"))
    assert budget_cmd.run(_args(cluster_spec=path)) == 0
    out = capsys.readouterr().out
    assert f"1 x VM.Standard.A1.Flex, 4 OCPU / 24 GB, 50 GB boot volume each ({path})" in out
    assert "Storage: 150 GB of 200 GB" in out


def test_cli_exit_one_when_it_does_not_fit(prod, monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setattr(budget_cmd, "render_overlay", lambda name: prod)
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC_YAML.replace("boot_volume_gb: 50", "boot_volume_gb: 100"))
    assert budget_cmd.run(_args(cluster_spec=path)) == 1
    assert "Storage: 300 GB of 200 GB  DOES NOT FIT" in capsys.readouterr().out


def test_cli_real_render_bad_overlay_and_bad_spec(tmp_path: Path) -> None:
    assert budget_cmd.run(_args()) == 0
    with pytest.raises(CliError, match="no overlay 'staging'"):
        budget_cmd.run(_args(overlay="staging"))
    with pytest.raises(CliError, match="cannot read the cluster spec"):
        budget_cmd.run(_args(cluster_spec=tmp_path / "missing.yaml"))
