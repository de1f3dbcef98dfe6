"""The Always Free budget of the rendered prod overlay, and the budget arithmetic itself."""

from __future__ import annotations

import argparse
import copy
import json

import pytest

from console.commands import budget as budget_cmd
from console.manifests import budget as model
from tests.kustomize.conftest import one


def test_prod_fits_the_always_free_allowance(prod) -> None:
    result = model.compute(prod, overlay="prod")
    assert result.fits, model.format_report(result)
    assert result.cpu_m <= model.CAPACITY_CPU_M
    assert result.mem_mib <= model.CAPACITY_MEM_MIB
    assert result.storage_gb <= model.CAPACITY_STORAGE_GB


def test_prod_budget_counts_every_part(prod) -> None:
    result = model.compute(prod, overlay="prod")
    groups = result.by_group()
    assert {"apps", "dapr-sidecars", "strimzi", "operators", "oke-system"} <= set(groups)
    names = {line.name for line in result.lines}
    assert {"backend", "backend daprd", "todo-kafka-dual-role", "todo-kafka-kafka-exporter", "dapr-scheduler-server",
            "prometheus", "loki", "fluent-bit", "metrics-server", "keda-operator", "ingress-nginx-controller"} <= names
    backend = next(line for line in result.lines if line.name == "backend")
    assert (backend.replicas, backend.max_replicas) == (1, 3), "HPA minimum counts, maximum reported"
    sidecar = next(line for line in result.lines if line.name == "backend daprd")
    assert (sidecar.cpu_m, sidecar.mem_mib) == (50, 96), "from the dapr.io/sidecar-* annotations"
    kafka = next(line for line in result.lines if line.name == "todo-kafka-dual-role")
    assert kafka.cpu_m == 400, "from the KafkaNodePool"
    assert kafka.mem_mib == 1536, "from the KafkaNodePool"
    scheduler = [v for v in result.volumes if v.name.startswith("dapr-scheduler-data-dir")]
    assert len(scheduler) == 3, "three scheduler PVCs, 50 GB each"
    assert all(v.billed_gb == 50 for v in scheduler), "three scheduler PVCs, 50 GB each"


def test_missing_requests_fall_back_to_the_limitrange_default(prod) -> None:
    objs = copy.deepcopy(prod)
    dep = one(objs, "Deployment", "worker")
    del dep["spec"]["template"]["spec"]["containers"][0]["resources"]
    for key in [k for k in dep["spec"]["template"]["metadata"]["annotations"] if k.startswith("dapr.io/sidecar-")]:
        del dep["spec"]["template"]["metadata"]["annotations"][key]
    lines = {line.name: line for line in model.workload_lines(objs, nodes=2)}
    assert (lines["worker"].cpu_m, lines["worker"].mem_mib) == (50, 64)
    assert lines["worker daprd"].source == "LimitRange default in todo-app"


def test_every_volume_rounds_up_to_the_oke_minimum() -> None:
    assert model.Volume("v", "ns", 1.0, "t").billed_gb == 50
    assert model.Volume("v", "ns", 50.0, "t").billed_gb == 50
    assert model.Volume("v", "ns", 60.5, "t").billed_gb == 61


def test_an_extra_small_pvc_breaks_the_storage_budget(prod) -> None:
    objs = copy.deepcopy(prod) + [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": f"data-{i}", "namespace": "todo-app"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
        for i in range(2)
    ]
    result = model.compute(objs, overlay="prod")
    assert result.storage_gb == 250
    assert not result.fits_storage
    assert not result.fits


def test_boot_volumes_count_when_asked(prod) -> None:
    """OCI counts boot volumes in the same 200 GB: 1 node fits, 2 nodes do not (3 scheduler PVCs)."""
    assert model.compute(prod, overlay="prod", nodes=1, boot_volume_gb=50).fits_storage
    assert not model.compute(prod, overlay="prod", nodes=2, boot_volume_gb=50).fits_storage


def _args(**kw) -> argparse.Namespace:
    base = {"overlay": "prod", "json": False, "nodes": 2, "boot_volume_gb": 0}
    base.update(kw)
    return argparse.Namespace(**base)


def test_cli_exit_zero_and_json(prod, monkeypatch, capsys) -> None:
    monkeypatch.setattr(budget_cmd, "render_overlay", lambda name: prod)
    assert budget_cmd.run(_args(json=True)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"]["all"] is True
    assert data["capacity"]["cpu_m"] == 4000
    assert data["requests"]["cpu_m"] == sum(line["total_cpu_m"] for line in data["lines"])
    assert budget_cmd.run(_args()) == 0
    assert "fits the Always Free allowance" in capsys.readouterr().out


def test_cli_exit_one_when_it_does_not_fit(prod, monkeypatch, capsys) -> None:
    objs = copy.deepcopy(prod)
    one(objs, "KafkaNodePool", "dual-role")["spec"]["replicas"] = 9
    monkeypatch.setattr(budget_cmd, "render_overlay", lambda name: objs)
    assert budget_cmd.run(_args()) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out


def test_cli_real_render_and_bad_overlay(capsys) -> None:
    assert budget_cmd.run(_args()) == 0
    from console.cli import CliError
    with pytest.raises(CliError, match="no overlay 'staging'"):
        budget_cmd.run(_args(overlay="staging"))
