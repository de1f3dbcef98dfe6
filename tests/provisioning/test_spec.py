"""The cluster spec: the shipped example loads, every bad field is named, the Always Free allowance holds."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioning.spec import (
    DEFAULT_SPEC,
    SpecError,
    always_free_usage,
    load_cluster_spec,
    parse_cluster_spec,
)

EXAMPLE: dict[str, Any] = yaml.safe_load(DEFAULT_SPEC.read_text())


def spec_with(**changes: Any) -> dict[str, Any]:
    """The example with dotted-path changes applied, e.g. spec_with(**{"node_pool.size": 3})."""
    data = copy.deepcopy(EXAMPLE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        target = data
        for key in parents:
            target = target[key]
        target[leaf] = value
    return data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as caught:
        parse_cluster_spec(data, "cluster.yaml")
    return str(caught.value)


def test_the_shipped_example_fits_always_free_exactly() -> None:
    spec = load_cluster_spec()
    usage = always_free_usage(spec)
    assert (usage.a1_ocpus, usage.a1_memory_gb, usage.boot_volume_gb) == (4, 24, 100)
    assert (usage.load_balancers, usage.load_balancer_mbps) == (1, 10)
    assert spec.cluster.type == "BASIC_CLUSTER"
    assert spec.cluster.cni == "FLANNEL_OVERLAY"
    assert str(spec.network.api_endpoint_subnet_cidr) == "10.0.0.0/28"
    assert spec.node_pool.arch == "aarch64"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"node_pool.size": 3}, "6 OCPU is over the Always Free Ampere A1 allowance of 4 OCPU"),
        ({"node_pool.memory_gb_per_node": 16}, "32 GB is over the Always Free Ampere A1 allowance of 24 GB"),
        ({"node_pool.boot_volume_gb": 120}, "240 GB is over the Always Free block volume allowance of 200 GB"),
        ({"node_pool.size": 1, "node_pool.ocpus_per_node": 4, "node_pool.memory_gb_per_node": 24,
          "node_pool.boot_volume_gb": 201}, "201 GB is over the Always Free block volume allowance"),
        ({"load_balancer.count": 2}, "load_balancer.count: 2 is over the Always Free allowance of 1"),
        ({"load_balancer.bandwidth_mbps": 100}, "load_balancer.bandwidth_mbps: 100 is over"),
        ({"cluster.type": "ENHANCED_CLUSTER"}, "cluster.type: ENHANCED_CLUSTER is billed per hour"),
        ({"node_pool.shape": "VM.Standard.E4.Flex"}, "node_pool.shape: VM.Standard.E4.Flex is not Always Free"),
    ],
)
def test_over_the_allowance_is_refused_naming_the_limit(changes: dict[str, Any], expected: str) -> None:
    message = refusal(spec_with(**changes))
    assert expected in message
    assert "always_free: false" in message


def test_a_paid_spec_may_leave_the_allowance() -> None:
    spec = parse_cluster_spec(spec_with(**{"always_free": False, "node_pool.size": 3,
                                           "cluster.type": "ENHANCED_CLUSTER"}))
    assert always_free_usage(spec).a1_ocpus == 6


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"network.vcn_cidr": "10.0.0.0/20"}, "network.vcn_cidr: 10.0.0.0/20 must be a /16"),
        ({"network.vcn_cidr": "10.0.0.1/16"}, "network.vcn_cidr: "),
        ({"network.workers_subnet_cidr": "10.1.0.0/24"}, "network.workers_subnet_cidr: 10.1.0.0/24 is not inside"),
        ({"network.load_balancer_subnet_cidr": "10.0.10.128/25"},
         "network.workers_subnet_cidr 10.0.10.0/24 overlaps network.load_balancer_subnet_cidr"),
        ({"network.pods_cidr": "10.0.128.0/17"}, "network.pods_cidr: 10.0.128.0/17 overlaps vcn_cidr"),
        ({"network.services_cidr": "10.244.0.0/20"}, "network.pods_cidr 10.244.0.0/16 overlaps network.services_cidr"),
        ({"cluster.kubernetes_version": "1.34"}, "cluster.kubernetes_version: "),
        ({"cluster.cni": "CALICO"}, "cluster.cni: "),
        ({"node_pool.ocpus_per_node": 1}, "below FR-A08's minimum of 2 OCPU and 8 GB"),
        ({"node_pool.memory_gb_per_node": 200, "always_free": False}, "flexible shapes take 1 to 64 GB per OCPU"),
        ({"node_pool.boot_volume_gb": 40}, "node_pool.boot_volume_gb: "),
        ({"node_pool.ssh_public_key": "AAAA..."}, "node_pool.ssh_public_key: not an OpenSSH public key"),
        ({"compartment_id": "ocid1.vcn.oc1..abc"}, "compartment_id: "),
        ({"name": "Todo_Prod"}, "name: "),
        ({"node_pool.colour": "blue"}, "node_pool.colour: unknown setting"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], expected: str) -> None:
    assert expected in refusal(spec_with(**changes))


def test_missing_fields_are_listed_together() -> None:
    data = spec_with()
    del data["region"]
    del data["node_pool"]["shape"]
    message = refusal(data)
    assert "region: required" in message
    assert "node_pool.shape: required" in message


def test_an_ssh_key_is_kept_and_an_empty_one_means_none() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx8 operator@laptop"
    assert parse_cluster_spec(spec_with(**{"node_pool.ssh_public_key": key})).node_pool.ssh_public_key == key
    assert parse_cluster_spec(spec_with(**{"node_pool.ssh_public_key": "  "})).node_pool.ssh_public_key is None


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the cluster spec"):
        load_cluster_spec(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: todo\nnetwork: [\n")
    with pytest.raises(SpecError, match=r"broken.yaml: not valid YAML at line \d"):
        load_cluster_spec(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- name: todo\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_cluster_spec(listed)
