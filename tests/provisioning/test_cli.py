"""`todo-console provision` at its edges: bad input and unreachable or unwilling OCI give one line and exit 2."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.provisioning.conftest import REGION, Provision, write_spec
from tests.provisioning.oci_standin import ApiKey, OciStandIn


def one_line(err: str) -> str:
    """The error: the last line on stderr (progress lines may come before it), and no traceback."""
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("todo-console provision"), err
    return last


def test_a_bad_spec_is_refused_naming_the_field(provision: Provision, tmp_path: Path, standin: OciStandIn) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: todo\nregion: eu-frankfurt-1\n")
    result = provision("plan", config=spec)
    assert result.code == 2
    assert one_line(result.err).startswith(f"todo-console provision: {spec}: compartment_id: required")
    assert standin.calls == []


def test_a_spec_over_the_always_free_allowance_is_refused_before_any_call(
        provision: Provision, tmp_path: Path, standin: OciStandIn) -> None:
    spec = write_spec(tmp_path / "big.yaml", node_pool__size=3)
    result = provision("apply", config=spec)
    assert result.code == 2
    assert "6 OCPU is over the Always Free Ampere A1 allowance of 4 OCPU in all" in one_line(result.err)
    assert standin.calls == []


def test_a_bad_setting_names_its_variable(provision: Provision, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TODO_PROVISION_POLL_INTERVAL_S", "-1")
    result = provision("plan")
    assert result.code == 2
    assert one_line(result.err) == "todo-console provision: TODO_PROVISION_POLL_INTERVAL_S: Input should be greater than 0"


def test_no_oci_config(provision: Provision, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TODO_PROVISION_OCI_CONFIG_FILE", str(tmp_path / "nowhere"))
    result = provision("plan")
    assert result.code == 2
    assert "no OCI config at" in one_line(result.err)


def test_a_key_oci_does_not_know(provision: Provision, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                 api_key: ApiKey) -> None:
    stranger = ApiKey.generate(api_key.tenancy, api_key.user)
    monkeypatch.setenv("TODO_PROVISION_OCI_CONFIG_FILE", str(stranger.write_oci_config(tmp_path, REGION)))
    result = provision("plan")
    assert result.code == 2
    assert "OCI refused the request signature (NotAuthenticated)" in one_line(result.err)


def test_oci_unreachable(provision: Provision, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("TODO_PROVISION_OCI_ENDPOINT", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("TODO_PROVISION_MAX_ATTEMPTS", "2")
    result = provision("plan")
    assert result.code == 2
    assert one_line(result.err) == f"todo-console provision: cannot reach http://127.0.0.1:{closed}: Connection refused"


def test_destroy_asks_first_and_stops_at_a_load_balancer_it_did_not_make(
        provision: Provision, standin: OciStandIn) -> None:
    assert provision("apply").code == 0
    unconfirmed = provision("destroy")  # stdin is not a terminal under pytest
    assert unconfirmed.code == 2
    assert "pass --yes when not running interactively" in unconfirmed.err
    assert standin.count("delete_node_pool") == 0

    lb_subnet = next(s["id"] for s in standin.live("subnet") if s["displayName"] == "todo-subnet-load-balancers")
    foreign = standin.cloud.add_load_balancer(lb_subnet, tags={})
    refused = provision("destroy", "--yes")
    assert refused.code == 1
    assert "nothing was deleted" in refused.err
    assert standin.mutating_calls()[-1].operation == "create_node_pool"

    # One the cluster's cloud controller made with the cluster's tags is deleted with everything else.
    standin.cloud.items.pop(foreign)
    ours = standin.cloud.add_load_balancer(lb_subnet, tags={"todo-platform-cluster": "todo",
                                                           "todo-platform-resource": "ingress-load-balancer"})
    destroyed = provision("destroy", "--yes")
    assert destroyed.code == 0, destroyed.err
    assert standin.live("load_balancer") == []
    deletes = [c.operation for c in standin.mutating_calls() if c.operation.startswith("delete_")]
    assert deletes.index("delete_cluster") < deletes.index("delete_load_balancer") < deletes.index("delete_subnet")
    assert standin.cloud.items[ours].state == "DELETED"
