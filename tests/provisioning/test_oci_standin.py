"""The stand-in is as strict as OCI where it matters: a tool that passes against it signs correctly, sends
bodies the API accepts, and respects OCI's rules. Requests here are made with the real SDK's signer."""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path
from typing import Any

import oci
import pytest
import requests

from tests.provisioning.conftest import COMPARTMENT, REGION, TENANCY
from tests.provisioning.oci_standin import ApiKey, OciStandIn


@pytest.fixture
def signer(api_key: ApiKey) -> oci.signer.Signer:
    return oci.signer.Signer(api_key.tenancy, api_key.user, api_key.fingerprint, None,
                             private_key_content=api_key.private_pem.decode())


@pytest.fixture
def network(api_key: ApiKey, standin: OciStandIn, tmp_path: Path) -> oci.core.VirtualNetworkClient:
    config = oci.config.from_file(str(api_key.write_oci_config(tmp_path, REGION)))
    return oci.core.VirtualNetworkClient(config, service_endpoint=standin.url,
                                        retry_strategy=oci.retry.NoneRetryStrategy())


def send(standin: OciStandIn, signer: Any, method: str, path: str, body: Any = None,
         tamper: Any = None) -> requests.Response:
    request = requests.Request(method, standin.url + path, auth=signer,
                               data=json.dumps(body) if body is not None else None).prepare()
    if tamper:
        tamper(request)
    with requests.Session() as session:
        return session.send(request, timeout=10)


def vcn_body(**extra: Any) -> dict[str, Any]:
    return {"compartmentId": COMPARTMENT, "cidrBlocks": ["10.0.0.0/16"], "displayName": "probe", **extra}


def test_only_requests_signed_with_the_api_key_are_served(standin: OciStandIn, signer: Any, api_key: ApiKey) -> None:
    assert send(standin, signer, "GET", f"/20160918/vcns?compartmentId={COMPARTMENT}").status_code == 200
    assert requests.get(f"{standin.url}/20160918/vcns?compartmentId={COMPARTMENT}", timeout=10).status_code == 401
    impostor = ApiKey.generate(TENANCY, api_key.user)
    forged = oci.signer.Signer(TENANCY, api_key.user, api_key.fingerprint, None,  # right keyId, wrong key
                               private_key_content=impostor.private_pem.decode())
    answer = send(standin, forged, "GET", f"/20160918/vcns?compartmentId={COMPARTMENT}")
    assert answer.status_code == 401
    assert answer.json() == {"code": "NotAuthenticated", "message": "the signature does not verify with the API key"}


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda r: setattr(r, "body", r.body.replace("probe", "other")), "x-content-sha256 does not match"),
        (lambda r: r.headers.__setitem__("date", email.utils.formatdate(time.time() - 600, usegmt=True)),
         "the date header is"),
        (lambda r: setattr(r, "url", r.url.replace("/vcns", "/subnets")), "does not verify"),
    ],
)
def test_a_request_changed_after_signing_is_refused(standin: OciStandIn, signer: Any, tamper: Any,
                                                    reason: str) -> None:
    answer = send(standin, signer, "POST", "/20160918/vcns", vcn_body(), tamper)
    assert answer.status_code == 401
    assert reason in answer.json()["message"]
    assert standin.live("vcn") == []


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/20160918/vcns", vcn_body(cidrBlocks="10.0.0.0/16"), "cidrBlocks: expected a list"),
        ("/20160918/vcns", vcn_body(colour="blue"), "colour: unknown property of CreateVcnDetails"),
        ("/20160918/subnets", {"compartmentId": COMPARTMENT, "cidrBlock": "10.0.1.0/24"},
         "vcnId: required by CreateSubnetDetails"),
        ("/20180222/clusters", {"compartmentId": COMPARTMENT, "name": "c", "vcnId": "x", "kubernetesVersion": "v1",
                                "type": "HUGE_CLUSTER"}, "type: Invalid value for `type`"),
        ("/20180222/nodePools", {"compartmentId": COMPARTMENT, "clusterId": "c", "name": "p", "nodeShape": "s",
                                 "nodeSourceDetails": {"sourceType": "IMAGE"}},
         "nodeSourceDetails.imageId: required by NodeSourceViaImageDetails"),
    ],
)
def test_bodies_are_validated_against_the_sdk_models(standin: OciStandIn, signer: Any, path: str,
                                                     body: dict[str, Any], reason: str) -> None:
    answer = send(standin, signer, "POST", path, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "InvalidParameter"
    assert reason in answer.json()["message"]


def test_retry_tokens_are_honoured(network: oci.core.VirtualNetworkClient, standin: OciStandIn) -> None:
    details = oci.core.models.CreateVcnDetails(compartment_id=COMPARTMENT, cidr_blocks=["10.0.0.0/16"])
    first = network.create_vcn(details, opc_retry_token="token-1").data
    again = network.create_vcn(details, opc_retry_token="token-1").data
    assert again.id == first.id
    assert len(standin.live("vcn")) == 1
    other = oci.core.models.CreateVcnDetails(compartment_id=COMPARTMENT, cidr_blocks=["10.1.0.0/16"])
    with pytest.raises(oci.exceptions.ServiceError) as reused:
        network.create_vcn(other, opc_retry_token="token-1")
    assert reused.value.status == 409


def available_vcn(network: oci.core.VirtualNetworkClient) -> Any:
    vcn = network.create_vcn(oci.core.models.CreateVcnDetails(compartment_id=COMPARTMENT,
                                                              cidr_blocks=["10.0.0.0/16"])).data
    assert vcn.lifecycle_state == "PROVISIONING"
    deadline = time.monotonic() + 30
    while network.get_vcn(vcn.id).data.lifecycle_state != "AVAILABLE" and time.monotonic() < deadline:
        time.sleep(0.01)
    return vcn


def subnet_in(network: oci.core.VirtualNetworkClient, vcn: Any, cidr: str) -> Any:
    return network.create_subnet(oci.core.models.CreateSubnetDetails(
        compartment_id=COMPARTMENT, vcn_id=vcn.id, cidr_block=cidr)).data


def test_oci_rules_are_enforced(network: oci.core.VirtualNetworkClient, standin: OciStandIn) -> None:
    vcn = available_vcn(network)
    made = subnet_in(network, vcn, "10.0.1.0/24")
    for outside_or_overlapping in ("10.1.0.0/24", "10.0.1.128/25"):
        with pytest.raises(oci.exceptions.ServiceError) as refused:
            subnet_in(network, vcn, outside_or_overlapping)
        assert refused.value.status == 400
    with pytest.raises(oci.exceptions.ServiceError) as in_use:
        network.delete_vcn(vcn.id)
    assert (in_use.value.status, in_use.value.code) == (409, "Conflict")
    assert made.id in in_use.value.message
    # The VCN's default route table and security list are listed, untagged, and go with the VCN.
    defaults = network.list_route_tables(COMPARTMENT, vcn_id=vcn.id).data
    assert [table.id for table in defaults] == [vcn.default_route_table_id]
    with pytest.raises(oci.exceptions.ServiceError) as wrong_place:
        network.list_vcns("ocid1.compartment.oc1..someoneelse")
    assert wrong_place.value.status == 404


def test_work_requests_go_through_their_states(network: oci.core.VirtualNetworkClient, standin: OciStandIn,
                                               api_key: ApiKey, tmp_path: Path) -> None:
    vcn = available_vcn(network)
    subnet = subnet_in(network, vcn, "10.0.0.0/28")
    config = oci.config.from_file(str(api_key.write_oci_config(tmp_path, REGION)))
    engine = oci.container_engine.ContainerEngineClient(config, service_endpoint=standin.url,
                                                        retry_strategy=oci.retry.NoneRetryStrategy())
    standin.cloud.work_request_s = 0.5
    models = oci.container_engine.models
    response = engine.create_cluster(models.CreateClusterDetails(
        name="probe", compartment_id=COMPARTMENT, vcn_id=vcn.id, kubernetes_version="v1.34.1",
        endpoint_config=models.CreateClusterEndpointConfigDetails(subnet_id=subnet.id)))
    assert response.status == 202
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and seen[-1:] != ["SUCCEEDED"]:
        request = engine.get_work_request(response.headers["opc-work-request-id"]).data
        if seen[-1:] != [request.status]:
            seen.append(request.status)
        time.sleep(0.02)
    assert seen[-2:] == ["IN_PROGRESS", "SUCCEEDED"]
    cluster_id = request.resources[0].identifier
    assert request.resources[0].entity_type == "cluster"
    assert engine.get_cluster(cluster_id).data.lifecycle_state == "ACTIVE"
