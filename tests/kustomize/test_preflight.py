"""`todo-console preflight`: the repository's prod overlay is refused for its placeholders; a copy with an
operator's real settings passes; a mismatch with the cluster spec or DNS is refused."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from console.cli import CliError
from console.commands import preflight as preflight_cmd
from console.manifests import preflight
from console.manifests.cluster_spec import DEFAULT_SPEC
from console.manifests.render import KUSTOMIZE_DIR

REAL = {  # what an operator in Frankfurt with tenancy namespace frxyz1234567 would write
    "host": "todo.platform-team.dev", "acme-email": "ops@platform-team.dev", "api-endpoint-cidr": "10.0.0.0/28",
    "image-prefix": "fra.ocir.io/frxyz1234567/todo/", "oci-region": "eu-frankfurt-1",
    "object-storage-endpoint": "https://frxyz1234567.compat.objectstorage.eu-frankfurt-1.oraclecloud.com",
    "backup-bucket": "todo-backups", "logs-bucket": "todo-logs",
}


def filled_in(tmp_path: Path, **overrides: str) -> Path:
    """A copy of kustomize/ with the prod settings and image names an operator would set."""
    tree = tmp_path / "kustomize"
    shutil.copytree(KUSTOMIZE_DIR, tree)
    apps = tree / "overlays" / "prod-apps"
    env = yaml.safe_load((apps / "environment.yaml").read_text())
    env["data"] = {**REAL, **overrides}
    (apps / "environment.yaml").write_text(yaml.safe_dump(env, sort_keys=False))
    kustomization = (apps / "kustomization.yaml").read_text()
    (apps / "kustomization.yaml").write_text(kustomization.replace("iad.ocir.io/axxxxxxxxxxx/", "fra.ocir.io/frxyz1234567/"))
    return tree


def findings(checks: list[preflight.Check]) -> dict[str, list[str]]:
    return {c.name: c.findings for c in checks}


def test_the_repositorys_prod_overlay_is_refused_for_its_placeholders() -> None:
    checks = findings(preflight.run_checks("prod", DEFAULT_SPEC))
    placeholders = checks.pop("no placeholder values")
    assert any("host is a placeholder (todo.example.com)" in f for f in placeholders)
    assert any("VirtualServer todo-app/todo: spec.host is a placeholder" in f for f in placeholders)
    assert any("axxxxxxxxxxx" in f and "Deployment todo-app/backend" in f for f in placeholders)
    assert any("acme-email is a placeholder" in f for f in placeholders)
    assert checks == {name: [] for name in checks}, "everything else about it is consistent"


def test_an_operators_settings_pass_every_check(tmp_path: Path) -> None:
    checks = preflight.run_checks("prod", DEFAULT_SPEC, kustomize_dir=filled_in(tmp_path))
    assert findings(checks) == {c.name: [] for c in checks}
    assert {"no placeholder values", "overlay matches the cluster spec", "fits Always Free (budget)",
            "quotas admit the budget", "bootstrap creates everything before it is needed",
            "ci-deployer can apply overlays/prod-apps"} == {c.name for c in checks}


def test_a_mismatch_with_the_cluster_or_within_the_settings_is_refused(tmp_path: Path) -> None:
    spec = dataclasses.replace(DEFAULT_SPEC, api_endpoint_subnet_cidr="10.1.0.0/28", cni="OCI_VCN_IP_NATIVE",
                               node_pool=dataclasses.replace(DEFAULT_SPEC.node_pool, boot_volume_gb=100))
    tree = filled_in(tmp_path, **{"oci-region": "us-ashburn-1", "image-prefix": "fra.ocir.io/otherns/todo/"})
    found = findings(preflight.run_checks("prod", spec, kustomize_dir=tree))
    cluster = found["overlay matches the cluster spec"]
    assert any("allows the API server at 10.0.0.0/28 but the cluster's API endpoint subnet is 10.1.0.0/28" in f
               for f in cluster)
    assert any("cluster CNI is OCI_VCN_IP_NATIVE" in f for f in cluster)
    assert any("is in region eu-frankfurt-1, oci-region says us-ashburn-1" in f for f in cluster)
    assert any("image-prefix names tenancy namespace otherns, object-storage-endpoint frxyz1234567" in f for f in cluster)
    assert any("is not under image-prefix fra.ocir.io/otherns/todo/" in f for f in cluster), "CD could not update it"
    assert found["fits Always Free (budget)"] == ["todo-console budget --overlay prod: DOES NOT FIT"]
    assert found["no placeholder values"] == []


def test_dns_must_point_at_the_load_balancer_before_the_certificate() -> None:
    assert preflight.resolves_to("localhost", "127.0.0.1") == []
    assert "not to the load balancer 10.0.20.5" in preflight.resolves_to("localhost", "10.0.20.5")[0]
    assert "not an IP address" in preflight.resolves_to("localhost", "lb.example")[0]
    assert "does not resolve yet" in preflight.resolves_to("no-such-host.invalid", "10.0.20.5")[0]


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"overlay": "prod", "cluster_spec": None, "resolves_to": None, **kw})


def test_cli_refuses_with_exit_one_and_names_each_finding(capsys) -> None:
    assert preflight_cmd.run(_args()) == 1
    out = capsys.readouterr().out
    assert "FAIL  no placeholder values" in out
    assert "todo.example.com" in out
    assert "Refused" in out
    assert preflight_cmd.run(_args(overlay="dev")) == 0
    assert "Ready to apply." in capsys.readouterr().out


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="cannot read the cluster spec"):
        preflight_cmd.run(_args(cluster_spec=tmp_path / "nope.yaml"))
    with pytest.raises(CliError, match="no overlay 'stage'"):
        preflight_cmd.run(_args(overlay="stage"))
