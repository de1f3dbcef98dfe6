"""The planner, without OCI: desired resources against what a discovery found."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from provisioning.model import Desired, Kind, Lifecycle, Observed, resolve
from provisioning.network import ANYWHERE, SecurityRule
from provisioning.plan import Action, destroy_plan, format_plan, make_plan
from provisioning.resources import ORDER, desired_resources
from provisioning.spec import ClusterSpec, load_cluster_spec

SPEC = load_cluster_spec()
DESIRED = desired_resources(SPEC)
IDS = {key: f"ocid1.{key}.oc1..{i}" for i, key in enumerate(ORDER)}


def existing(want: Desired, lifecycle: Lifecycle = Lifecycle.READY, **attrs: Any) -> Observed:
    """What OCI would hold for `want` once created."""
    values = {attr: resolve(value, IDS) for attr, value in want.attrs.items()}
    values.update(attrs)
    return Observed(want.key, want.kind, IDS[want.key], want.name, lifecycle, lifecycle.name, values,
                    created="2026-01-01T00:00:00+00:00")


def everything(**overrides: Observed) -> list[Observed]:
    return [overrides.get(want.key.replace("-", "_"), existing(want)) for want in DESIRED]


def by_key(spec: ClusterSpec = SPEC) -> dict[str, Desired]:
    return {want.key: want for want in desired_resources(spec)}


def actions(observed: list[Observed]) -> dict[str, str]:
    return {step.key: step.action.value for step in make_plan("todo", DESIRED, observed).steps}


def test_resources_come_in_dependency_order() -> None:
    assert [want.key for want in DESIRED] == list(ORDER)
    seen: set[str] = set()
    for want in DESIRED:
        assert want.refs() <= seen, f"{want.key} refers to something created after it"
        seen.add(want.key)
    assert all(want.name == f"todo-{want.key}" for want in DESIRED)


def test_an_empty_compartment_creates_everything_in_order() -> None:
    plan = make_plan("todo", DESIRED, [])
    assert [(s.action, s.key) for s in plan.steps] == [(Action.CREATE, key) for key in ORDER]
    assert plan.has_changes
    assert len(plan.creates()) == 14


def test_what_matches_is_kept() -> None:
    plan = make_plan("todo", DESIRED, everything())
    assert {s.action for s in plan.steps} == {Action.KEEP}
    assert not plan.has_changes
    assert dict(plan.ids) == IDS
    assert "the environment matches the spec" in format_plan(plan)


def test_mutable_differences_are_updates() -> None:
    want = by_key()
    rules = set(want["security-list-workers"].attrs["security_rules"])
    rules.discard(next(iter(rules)))
    plan = make_plan("todo", DESIRED, everything(
        node_pool=existing(want["node-pool"], size=3),
        security_list_workers=existing(want["security-list-workers"], security_rules=frozenset(rules)),
    ))
    updates = {s.key: s for s in plan.steps if s.action is Action.UPDATE}
    assert set(updates) == {"node-pool", "security-list-workers"}
    assert updates["node-pool"].changes[0].summary() == "size: 3 -> 2"
    assert updates["security-list-workers"].changes[0].summary() == "security_rules: +1 -0"


@pytest.mark.parametrize(
    ("key", "attrs", "reason"),
    [
        ("subnet-workers", {"cidr_block": "10.0.99.0/24"}, "cidr_block cannot change in place"),
        ("vcn", {"dns_label": "other"}, "dns_label cannot change in place"),
        ("cluster", {"kubernetes_version": "v1.35.0"}, "OKE cannot downgrade v1.35.0 to v1.34.1"),
        ("cluster", {"type": "ENHANCED_CLUSTER"}, "OKE cannot change ENHANCED_CLUSTER back to BASIC_CLUSTER"),
        ("node-pool", {"cni": "OCI_VCN_IP_NATIVE"}, "cni cannot change in place"),
    ],
)
def test_what_oci_cannot_change_in_place_is_blocked(key: str, attrs: dict[str, Any], reason: str) -> None:
    want = by_key()[key]
    plan = make_plan("todo", DESIRED, everything(**{key.replace("-", "_"): existing(want, **attrs)}))
    assert [s.key for s in plan.blocked] == [key]
    assert reason in plan.blocked[0].reason


def test_an_upgrade_is_an_update() -> None:
    want = by_key()["cluster"]
    plan = make_plan("todo", DESIRED, everything(cluster=existing(want, kubernetes_version="v1.33.1")))
    assert actions_of(plan)["cluster"] == "update"


def actions_of(plan: Any) -> dict[str, str]:
    return {step.key: step.action.value for step in plan.steps}


def test_a_failed_cluster_is_replaced_and_a_pending_one_waited_for() -> None:
    want = by_key()
    observed = everything(cluster=existing(want["cluster"], Lifecycle.FAILED))
    assert actions(observed)["cluster"] == "replace"
    pending = make_plan("todo", DESIRED, everything(cluster=existing(want["cluster"], Lifecycle.PENDING)))
    step = next(s for s in pending.steps if s.key == "cluster")
    assert (step.action, step.pending) == (Action.KEEP, True)
    assert "apply waits for it" in step.reason


def test_duplicates_keep_the_oldest_ready_one_and_delete_the_rest() -> None:
    want = by_key()["subnet-workers"]
    oldest = existing(want)
    newer = dataclasses.replace(oldest, id="ocid1.subnet.oc1..dup", created="2026-02-01T00:00:00+00:00")
    failed_older = dataclasses.replace(oldest, id="ocid1.subnet.oc1..old", created="2025-01-01T00:00:00+00:00",
                                       lifecycle=Lifecycle.FAILED)
    plan = make_plan("todo", DESIRED, [*everything(), newer, failed_older])
    deletes = {s.id for s in plan.steps if s.action is Action.DELETE}
    assert deletes == {"ocid1.subnet.oc1..dup", "ocid1.subnet.oc1..old"}
    assert plan.ids["subnet-workers"] == oldest.id


def test_a_resource_still_being_deleted_is_waited_for_before_its_replacement() -> None:
    want = by_key()["vcn"]
    plan = make_plan("todo", DESIRED, [existing(want, Lifecycle.DELETING)])
    step = plan.steps[0]
    assert (step.action, step.wait_for) == (Action.CREATE, (IDS["vcn"],))


def test_tagged_resources_the_spec_does_not_have_are_deleted_children_first() -> None:
    stray_vcn = Observed("old-vcn", Kind.VCN, "ocid1.vcn..stray", "todo-old-vcn", Lifecycle.READY, "AVAILABLE")
    stray_subnet = Observed("", Kind.SUBNET, "ocid1.subnet..stray", "x", Lifecycle.READY, "AVAILABLE")
    plan = make_plan("todo", DESIRED, [*everything(), stray_vcn, stray_subnet])
    assert [s.id for s in plan.steps if s.action is Action.DELETE] == ["ocid1.subnet..stray", "ocid1.vcn..stray"]


def test_references_follow_what_exists() -> None:
    """A route table pointing at a NAT gateway that is gone is updated to the one apply will create."""
    want = by_key()
    observed = [o for o in everything() if o.key != "nat-gateway"]
    plan = make_plan("todo", DESIRED, observed)
    assert actions_of(plan)["nat-gateway"] == "create"
    assert actions_of(plan)["route-table-private"] == "update"
    assert want["route-table-private"].refs() == {"vcn", "nat-gateway", "service-gateway"}


def test_destroy_goes_in_reverse_and_a_foreign_load_balancer_blocks_it() -> None:
    lb = Observed("", Kind.LOAD_BALANCER, "ocid1.loadbalancer..x", "lb", Lifecycle.READY, "ACTIVE")
    plan = destroy_plan("todo", everything())
    kinds = [s.kind for s in plan.steps]
    assert kinds[:2] == [Kind.NODE_POOL, Kind.CLUSTER]
    assert kinds[-1] is Kind.VCN
    assert kinds.index(Kind.SUBNET) < kinds.index(Kind.SECURITY_LIST) < kinds.index(Kind.INTERNET_GATEWAY)
    assert not plan.blocked
    assert [s.id for s in destroy_plan("todo", everything(), [lb]).blocked] == ["ocid1.loadbalancer..x"]


def test_plan_json_is_plain_and_stable() -> None:
    want = by_key()["security-list-load-balancers"]
    extra = SecurityRule("ingress", "6", ANYWHERE, ports=(8080, 8080), description="stray")
    changed = existing(want, security_rules=frozenset({*want.attrs["security_rules"], extra}))
    data = make_plan("todo", DESIRED, everything(security_list_load_balancers=changed)).to_dict()
    assert data["counts"]["update"] == 1
    change = next(s for s in data["steps"] if s["action"] == "update")["changes"][0]
    assert {"direction": "ingress", "protocol": "6", "peer": ANYWHERE, "ports": [8080, 8080], "icmp": None,
            "description": "stray", "stateless": False} in change["before"]
    assert len(change["after"]) == len(change["before"]) - 1
    assert json.dumps(data) == json.dumps(make_plan("todo", DESIRED, everything(
        security_list_load_balancers=changed)).to_dict())
