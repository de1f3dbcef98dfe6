"""Preflight: the tenancy's limits (the OCI Limits service) and OKE's offer, before anything is created."""

from __future__ import annotations

from pathlib import Path

from provisioning.plan import make_plan
from provisioning.preflight import Requirement, evaluate, requirements, shape_limits, spread
from provisioning.resources import desired_resources
from provisioning.spec import load_cluster_spec
from tests.provisioning.conftest import ADS, Provision, write_spec
from tests.provisioning.oci_standin import Limit, OciStandIn, free_tier_limits


def test_a_free_tier_only_account_is_told_plainly_and_nothing_is_created(
        provision: Provision, standin: OciStandIn) -> None:
    standin.cloud.limits = free_tier_limits()
    result = provision("preflight")
    assert result.code == 1
    assert "container-engine/cluster-count is 0 in this tenancy" in result.out
    assert "accounts on the Free Tier alone have been refused OKE clusters" in result.out
    assert "vcn/nat-gateway-count is 0 in this tenancy" in result.out
    assert "refused NAT gateways" in result.out
    assert "Preflight failed (2 of 12 checks): nothing was created." in result.out

    applied = provision("apply")
    assert applied.code == 1
    assert standin.mutating_calls() == []


def test_a1_capacity_used_elsewhere_stops_apply_before_any_mutating_call(
        provision: Provision, standin: OciStandIn) -> None:
    standin.cloud.limits[("compute", "standard-a1-core-count")] = Limit("AD", 4, used=3)
    result = provision("apply", "--json")
    assert result.code == 1
    findings = {f["limit_name"]: f for f in result.json()["preflight"]["findings"] if f["limit_name"]}
    cores = findings["standard-a1-core-count"]
    assert cores["ok"] is False
    assert f"{ADS[0]}: needs 2, 1 available (limit 4)" in cores["message"]
    assert findings["standard-a1-memory-count"]["ok"] is True
    assert standin.mutating_calls() == []


def test_a_limit_whose_use_oci_does_not_report_is_checked_by_its_value(
        provision: Provision, standin: OciStandIn) -> None:
    standin.cloud.limits[("container-engine", "cluster-count")] = Limit("REGION", 15, reports_availability=False)
    result = provision("preflight")
    assert result.code == 0, result.out
    assert ("container-engine/cluster-count: limit 15 (OCI does not report what is in use), the plan needs 1"
            in result.out)


def test_a_kubernetes_version_oke_does_not_offer_is_refused(
        provision: Provision, standin: OciStandIn, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "future.yaml", cluster__kubernetes_version="v1.99.0")
    result = provision("preflight", config=spec)
    assert result.code == 1
    assert "Kubernetes v1.99.0 is not offered by OKE in eu-frankfurt-1 (offered: v1.33.1, v1.34.1)" in result.out


def test_only_a_growing_node_pool_is_counted(spec_file: Path) -> None:
    spec = load_cluster_spec(spec_file)
    plan = make_plan(spec.name, desired_resources(spec), [])
    names = {r.limit: r for r in requirements(spec, plan, list(ADS))}
    assert set(names) == {"vcn-count", "internet-gateway-count", "nat-gateway-count", "service-gateway-count",
                          "cluster-count", "lb-flexible-count", "lb-flexible-bandwidth-sum",
                          "standard-a1-core-count", "standard-a1-memory-count", "total-storage-gb"}
    assert dict(names["standard-a1-core-count"].per_ad) == {ADS[0]: 2, ADS[1]: 2}
    assert names["total-storage-gb"].need == 100
    assert spread(5, ["a", "b", "c"]) == {"a": 2, "b": 2, "c": 1}
    assert shape_limits("VM.Standard.E4.Flex") == ("standard-e4-core-count", "standard-e4-memory-count")


def test_evaluate_explains_each_verdict() -> None:
    regional = Requirement("vcn", "vcn-count", "region", 1, "1 VCN")
    assert evaluate(regional, {None: 50}, {None: (49, 1)}).ok
    full = evaluate(regional, {None: 50}, {None: (0, 50)})
    assert not full.ok
    assert full.message == "vcn/vcn-count: needs 1, 0 available (limit 50, 50 used) (1 VCN)"
    per_vcn = Requirement("vcn", "service-gateway-count", "vcn", 1, "1 service gateway in the VCN")
    assert "refused service gateways" in evaluate(per_vcn, {None: 0}, {}).message
    unknown = evaluate(Requirement("compute", "standard-e5-core-count", "ad", 2, "x", {"AD-1": 2}), {}, {})
    assert not unknown.ok
    assert "ask Oracle for a limit increase" in unknown.message
