"""`provision kubeconfig`: OKE's kubeconfig (create_kubeconfig), and a ServiceAccount-token kubeconfig that the
real `kubernetes` client can use against the cluster (a TokenRequest stand-in behind TLS)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from provisioning.kubeconfig import KubeconfigError, parse_duration
from tests.provisioning.conftest import REGION, Provision
from tests.provisioning.kube_standin import KubeStandIn
from tests.provisioning.oci_standin import ApiKey, OciStandIn


@pytest.fixture
def kube(api_key: ApiKey, standin: OciStandIn, tmp_path: Path) -> Iterator[KubeStandIn]:
    server = KubeStandIn(api_key, REGION, tmp_path, lambda: {c["id"] for c in standin.live("cluster")},
                         service_accounts={("todo-app", "console-viewer")}).start()
    standin.cloud.kube_api = (server.url, server.ca_data)
    yield server
    server.stop()


def test_kubeconfigs_for_people_and_for_ci(provision: Provision, standin: OciStandIn, kube: KubeStandIn,
                                           tmp_path: Path) -> None:
    missing = provision("kubeconfig")
    assert missing.code == 1
    assert "no cluster todo-cluster in the compartment" in missing.err

    assert provision("apply").code == 0
    cluster_id = standin.live("cluster")[0]["id"]
    oke = provision("kubeconfig")
    assert oke.code == 0, oke.err
    config = yaml.safe_load(oke.out)
    assert config["clusters"][0]["cluster"]["server"] == kube.url
    assert config["users"][0]["user"]["exec"]["args"][:5] == ["ce", "cluster", "generate-token", "--cluster-id",
                                                              cluster_id]

    out = tmp_path / "kube" / "console-viewer.kubeconfig"
    made = provision("kubeconfig", "--service-account", "todo-app/console-viewer", "--duration", "2h",
                     "--out", str(out))
    assert made.code == 0, made.err
    assert made.out == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [seconds for _, _, seconds in kube.issued.values()] == [7200]
    assert "token for todo-app/console-viewer expires" in made.err

    # The kubeconfig works with the real client: TLS verified against its CA, the token accepted.
    api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(out)))
    assert api.list_namespaced_pod("todo-app").items == []
    with pytest.raises(k8s.ApiException) as forbidden:
        api.list_namespaced_pod("kafka")
    assert forbidden.value.status == 403

    # Errors: one line, exit 2.
    unknown = provision("kubeconfig", "--service-account", "todo-app/nobody")
    assert unknown.code == 2
    assert "ServiceAccount todo-app/nobody does not exist: apply the Kustomize deployment first" in unknown.err
    assert unknown.err.count("\n") == 1
    malformed = provision("kubeconfig", "--service-account", "console-viewer")
    assert malformed.code == 2
    assert "expected NAMESPACE/NAME" in malformed.err
    kube.key = ApiKey.generate(kube.key.tenancy, kube.key.user)  # the cluster no longer trusts our key
    refused = provision("kubeconfig", "--service-account", "todo-app/console-viewer")
    assert refused.code == 2
    assert "the cluster refused the OCI token (401" in refused.err


@pytest.mark.parametrize(("text", "seconds"), [("8h", 28800), ("10m", 600), ("7d", 604800), ("3600s", 3600)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "message"), [("5m", "at least 10m"), ("8 hours", "expected a number and a unit")])
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(KubeconfigError, match=message):
        parse_duration(text)
