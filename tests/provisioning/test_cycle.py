"""The whole cycle through `todo-console provision`, against the OCI stand-in through the real SDK:
plan -> apply -> plan shows no change -> apply changes nothing -> destroy -> nothing left."""

from __future__ import annotations

from pathlib import Path

from tests.provisioning.conftest import COMPARTMENT, Provision, write_spec
from tests.provisioning.oci_standin import OciStandIn

EXPECTED = {"vcn": 1, "internet_gateway": 1, "nat_gateway": 1, "service_gateway": 1, "route_table": 2,
            "security_list": 3, "subnet": 3, "cluster": 1, "node_pool": 1}


def live_counts(standin: OciStandIn) -> dict[str, int]:
    return {kind: len(standin.live(kind)) for kind in EXPECTED}


def tcp_ingress(security_list: dict, source: str) -> set[tuple[int, int]]:
    return {(r["tcpOptions"]["destinationPortRange"]["min"], r["tcpOptions"]["destinationPortRange"]["max"])
            for r in security_list["ingressSecurityRules"]
            if r["source"] == source and r["protocol"] == "6" and r.get("tcpOptions")}


def test_plan_apply_plan_destroy(provision: Provision, standin: OciStandIn) -> None:
    first = provision("plan", "--json")
    assert first.code == 1, first.err
    assert [step["action"] for step in first.json()["steps"]] == ["create"] * 14
    assert standin.mutating_calls() == []

    applied = provision("apply", "--json")
    assert applied.code == 0, applied.err
    assert applied.json()["in_sync"] is True
    assert len(applied.json()["outcome"]["done"]) == 14
    assert live_counts(standin) == EXPECTED
    creates = [c for c in standin.mutating_calls() if c.operation.startswith("create_")]
    assert len(creates) == 14
    assert all(call.retry_token for call in creates)
    # Progress of the cluster's work request was shown as it went.
    assert "cluster todo-cluster: SUCCEEDED" in applied.err

    # Everything is tagged, and the network is what the spec and the security rules say.
    for kind in EXPECTED:
        for item in standin.live(kind):
            assert item["freeformTags"]["todo-platform-cluster"] == "todo"
            assert item["compartmentId"] == COMPARTMENT
    subnets = {s["displayName"]: s for s in standin.live("subnet")}
    assert subnets["todo-subnet-workers"]["prohibitPublicIpOnVnic"] is True
    assert subnets["todo-subnet-load-balancers"]["prohibitPublicIpOnVnic"] is False
    lists = {s["displayName"]: s for s in standin.live("security_list")}
    assert {(30000, 32767), (10256, 10256)} <= tcp_ingress(lists["todo-security-list-workers"], "10.0.20.0/24")
    assert {(6443, 6443), (12250, 12250)} <= tcp_ingress(lists["todo-security-list-api-endpoint"], "10.0.10.0/24")
    cluster = standin.live("cluster")[0]
    assert cluster["clusterPodNetworkOptions"] == [{"cniType": "FLANNEL_OVERLAY"}]
    assert cluster["options"]["serviceLbSubnetIds"] == [subnets["todo-subnet-load-balancers"]["id"]]
    pool = standin.live("node_pool")[0]
    assert pool["nodeShapeConfig"] == {"ocpus": 2.0, "memoryInGBs": 12.0}
    assert [node["lifecycleState"] for node in pool["nodes"]] == ["ACTIVE", "ACTIVE"]
    assert pool["nodeConfigDetails"]["freeformTags"]["todo-platform-resource"] == "node-pool"

    calls = len(standin.calls)
    preflight = provision("preflight", "--json")
    assert preflight.code == 0
    assert preflight.json()["preflight"]["findings"][0]["message"].startswith("nothing to create")
    assert "get_resource_availability" not in {c.operation for c in standin.calls[calls:]}

    mutations = len(standin.mutating_calls())
    again = provision("plan", "--json")
    assert again.code == 0
    assert again.json()["in_sync"] is True
    assert {step["action"] for step in again.json()["steps"]} == {"keep"}
    idempotent = provision("apply")
    assert idempotent.code == 0
    assert "Applied 0 changes" in idempotent.out
    assert len(standin.mutating_calls()) == mutations

    destroyed = provision("destroy", "--yes", "--json")
    assert destroyed.code == 0, destroyed.err
    assert destroyed.json()["left"] == []
    assert [step["key"] for step in destroyed.json()["plan"]["steps"]][:2] == ["node-pool", "cluster"]
    assert live_counts(standin) == dict.fromkeys(EXPECTED, 0)
    assert provision("plan").code == 1


def test_spec_changes_are_applied_in_place_and_immutable_ones_refused(
        provision: Provision, standin: OciStandIn, tmp_path: Path) -> None:
    assert provision("apply").code == 0
    changed = write_spec(tmp_path / "smaller.yaml", node_pool__size=1,
                         network__api_endpoint_allowed_cidrs=["198.51.100.0/24"])
    plan = provision("plan", "--json", config=changed)
    updates = {step["key"]: step for step in plan.json()["steps"] if step["action"] == "update"}
    assert set(updates) == {"security-list-api-endpoint", "node-pool"}
    assert updates["node-pool"]["changes"] == [{"attr": "size", "before": 2, "after": 1}]

    before = len(standin.mutating_calls())
    assert provision("apply", config=changed).code == 0
    made = [call.operation for call in standin.mutating_calls()[before:]]
    assert sorted(made) == ["update_node_pool", "update_security_list"]
    assert standin.live("node_pool")[0]["nodeConfigDetails"]["size"] == 1
    api_list = next(s for s in standin.live("security_list") if s["displayName"] == "todo-security-list-api-endpoint")
    assert (6443, 6443) in tcp_ingress(api_list, "198.51.100.0/24")
    assert not tcp_ingress(api_list, "0.0.0.0/0")

    moved = write_spec(tmp_path / "moved.yaml", node_pool__size=1, network__workers_subnet_cidr="10.0.11.0/24",
                       network__api_endpoint_allowed_cidrs=["198.51.100.0/24"])
    blocked = provision("plan", "--json", config=moved)
    assert blocked.code == 1
    step = next(s for s in blocked.json()["steps"] if s["key"] == "subnet-workers")
    assert step["action"] == "blocked"
    assert "cidr_block cannot change in place" in step["reason"]
    before = len(standin.mutating_calls())
    refused = provision("apply", config=moved)
    assert refused.code == 1
    assert "cidr_block cannot change in place" in refused.err
    assert len(standin.mutating_calls()) == before
