"""OCI misbehaving the ways it does: throttling, server errors after the work was done, conflicts, and work
requests that fail. apply rides each out without making anything twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.oci_client import OciClient
from provisioning.settings import ProvisionSettings
from provisioning.spec import load_cluster_spec
from tests.provisioning.conftest import Provision
from tests.provisioning.oci_standin import Fault, OciStandIn
from tests.provisioning.test_cycle import EXPECTED, live_counts


def test_throttling_and_server_errors_are_retried_with_the_same_retry_token(
        provision: Provision, standin: OciStandIn) -> None:
    standin.inject(Fault("list_vcns", 429, times=2, retry_after="0.05"))
    standin.inject(Fault("create_vcn", 429, retry_after="0.05"))
    # The work is done, then the answer is lost as a 500: only the retry token prevents a second one.
    standin.inject(Fault("create_subnet", 500, after_commit=True))
    standin.inject(Fault("create_cluster", 500, after_commit=True))
    standin.inject(Fault("create_node_pool", 503, times=2))
    standin.inject(Fault("get_work_request", 502))

    result = provision("apply")
    assert result.code == 0, result.err
    assert live_counts(standin) == EXPECTED
    assert "429 TooManyRequests; trying again" in result.err
    for operation in ("create_subnet", "create_cluster"):
        calls = [c for c in standin.calls if c.operation == operation]
        first_lost = calls[0]
        assert first_lost.status == 500
        retry = next(c for c in calls if c.retry_token == first_lost.retry_token and c is not first_lost)
        assert retry.replayed, f"{operation}: the retry was not answered from the first request"
    assert [c.status for c in standin.calls if c.operation == "create_node_pool"] == [503, 503, 202]


def test_retry_after_is_honoured(oci_env: dict[str, str], spec_file: Path, standin: OciStandIn) -> None:
    waits: list[float] = []
    settings = ProvisionSettings(backoff_max_s=120)
    client = OciClient(load_cluster_spec(spec_file), settings, sleep=waits.append)
    standin.inject(Fault("list_vcns", 429, retry_after="7"))
    standin.inject(Fault("list_subnets", 429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"))  # a date long past
    client.discover()
    assert waits == [7.0, 0.0]


def test_a_conflict_means_look_again(provision: Provision, standin: OciStandIn) -> None:
    # Refused before doing anything: not found on a second look, so created (once).
    standin.inject(Fault("create_route_table", 409))
    # Done, then answered 409: found on a second look by its tags, and adopted.
    standin.inject(Fault("create_security_list", 409, after_commit=True))
    result = provision("apply")
    assert result.code == 0, result.err
    assert live_counts(standin) == EXPECTED
    assert "409 Conflict: injected; looking again" in result.err
    assert standin.count("create_security_list") == 3

    # A delete refused while something depends on it is tried again once that has settled.
    standin.inject(Fault("delete_subnet", 409, times=2))
    destroyed = provision("destroy", "--yes")
    assert destroyed.code == 0, destroyed.err
    assert live_counts(standin) == dict.fromkeys(EXPECTED, 0)


def test_a_failed_work_request_stops_apply_and_the_next_apply_replaces_it(
        provision: Provision, standin: OciStandIn) -> None:
    standin.fail_next_work_request("CLUSTER_CREATE", "Out of host capacity")
    failed = provision("apply")
    assert failed.code == 1
    assert "work request" in failed.err
    assert "FAILED: InternalError: Out of host capacity" in failed.err
    assert standin.count("create_node_pool") == 0

    plan = provision("plan", "--json").json()
    cluster_step = next(step for step in plan["steps"] if step["key"] == "cluster")
    assert cluster_step["action"] == "replace"
    assert cluster_step["state"] == "FAILED"

    again = provision("apply")
    assert again.code == 0, again.err
    assert live_counts(standin) == EXPECTED
    assert standin.count("delete_cluster") == 1


@pytest.mark.parametrize("status", [429, 500])
def test_faults_that_never_end_give_up_with_one_line(provision: Provision, standin: OciStandIn, status: int) -> None:
    standin.inject(Fault("list_vcns", status, times=1000))
    result = provision("plan")
    assert result.code == 1
    assert result.err.count("\n") >= 1
    assert result.err.strip().splitlines()[-1].startswith(f"todo-console provision plan: list_vcns: {status} ")
