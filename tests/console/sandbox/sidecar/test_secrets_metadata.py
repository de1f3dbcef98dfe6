"""Secrets (secretstore = Kubernetes secrets in the cluster), metadata and health endpoints.

https://docs.dapr.io/reference/api/secrets_api/ , https://docs.dapr.io/reference/api/metadata_api/ ,
https://docs.dapr.io/reference/api/health_api/
"""

from __future__ import annotations

import grpc
import httpx
import pytest
from dapr.proto.runtime.v1 import dapr_pb2_grpc, metadata_pb2

from tests.utils.sidecars import REPO, Sandbox, Sidecar
from tests.utils.stub_apps import StubApp

from .shared_resources import T


def test_get_secret_and_bulk(backend_client) -> None:
    assert backend_client.get_secret("secretstore", "postgres").secret == {
        "url": "postgresql://todo@db/todo", "password": "s3cret"}
    bulk = backend_client.get_bulk_secret("secretstore").secrets
    assert bulk["jwt"] == {"key": "k"}
    assert set(bulk) == {"postgres", "jwt"}


def test_missing_secret_and_unknown_store(backend_client) -> None:
    # predefined.go ErrSecretGet (Internal) wrapping the Kubernetes API's not-found text
    # the SDK raises the plain grpc.RpcError for secrets (no DaprGrpcError wrapper)
    with pytest.raises(grpc.RpcError) as err:
        backend_client.get_secret("secretstore", "nope")
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details() == ('failed getting secret with key nope from secret store secretstore: '
                                   'secrets "nope" not found')
    with pytest.raises(grpc.RpcError) as err:
        backend_client.get_secret("vault", "postgres")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "failed finding secret store with key vault"


def test_secrets_file_is_reread(sandbox: Sandbox, backend_client) -> None:
    import json

    data = json.loads(sandbox.secrets.read_text())
    sandbox.secrets.write_text(json.dumps({**data, "late": {"v": "1"}}))
    assert backend_client.get_secret("secretstore", "late").secret == {"v": "1"}


def _pinned_dapr_version() -> str:
    """The daprd release the cluster installs (kustomize/operators/versions.env, the `dapr` chart line)."""
    for line in (REPO / "kustomize" / "operators" / "versions.env").read_text().splitlines():
        if line.startswith("dapr|"):
            return line.split("|")[4]
    raise AssertionError("no dapr line in versions.env")


def test_grpc_metadata(worker: Sidecar, worker_app: StubApp) -> None:
    with worker.client() as client:
        md = client.get_metadata()
    assert md.application_id == "worker"
    types = {c.name: c.type for c in md.registered_components}
    # the declared ones, plus the `kubernetes` secret store daprd adds in Kubernetes mode
    # (pkg/runtime/runtime.go appendBuiltinSecretStore)
    assert types == {"kafka-pubsub": "pubsub.kafka", "statestore": "state.postgresql", "guarded": "state.postgresql",
                     "secretstore": "secretstores.kubernetes", "kubernetes": "secretstores.kubernetes"}
    # the SDK's wrapper drops subscriptions and the version: read them with the generated stub
    with grpc.insecure_channel(f"127.0.0.1:{worker.grpc_port}") as channel:
        raw = dapr_pb2_grpc.DaprStub(channel).GetMetadata(metadata_pb2.GetMetadataRequest())
    # the release the cluster pins; "+sandbox" is semver build metadata, which comparisons ignore
    assert raw.runtime_version == f"{_pinned_dapr_version()}+sandbox"
    subs = {s.topic: s for s in raw.subscriptions}
    assert subs[T["fail"]].dead_letter_topic == T["fail-dlq"]
    assert subs[T["fail"]].rules.rules[-1].path == "/events/fail"
    assert T["prog"] in subs  # the programmatic one too
    assert "not-for-worker" not in subs  # scoped to another app


def test_http_metadata_and_health(worker: Sidecar, worker_app: StubApp) -> None:
    body = httpx.get(f"{worker.http}/v1.0/metadata").json()
    assert body["id"] == "worker"
    assert body["appConnectionProperties"]["port"] == worker_app.port
    assert {c["name"] for c in body["components"]} == {"kafka-pubsub", "statestore", "guarded", "secretstore",
                                                       "kubernetes"}
    assert body["runtimeVersion"] == f"{_pinned_dapr_version()}+sandbox"
    assert any(s["topic"] == T["ok"] and s["deadLetterTopic"] == T["ok-dlq"] for s in body["subscriptions"])
    assert httpx.get(f"{worker.http}/v1.0/healthz").status_code == 204
    assert httpx.get(f"{worker.http}/v1.0/healthz/outbound").status_code == 204
