"""The Configuration CR's policies, as kustomize/base's todo-config uses them.

Service invocation access control: https://docs.dapr.io/operations/configuration/invoke-allowlist/
(daprd pkg/acl/acl.go; a denial reaches the caller as ERR_DIRECT_INVOKE with HTTP 403, per
pkg/api/http/directmessaging.go). Secret scopes: https://docs.dapr.io/operations/configuration/secret-scope/
(ERR_PERMISSION_DENIED, PermissionDenied, `access denied by policy to get "<key>" from "<store>"`).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest

from console.sandbox.broker import Broker
from console.sandbox.sidecar.policies import Policies
from tests.utils.sidecars import Sandbox, Sidecar, make_sandbox
from tests.utils.stub_apps import StubApp, start_app

from .shared_resources import BASE_DOCS

CONFIG = """
    apiVersion: dapr.io/v1alpha1
    kind: Configuration
    metadata: {name: todo-config, namespace: todo-app}
    spec:
      secrets:
        scopes:
          - {storeName: secretstore, defaultAccess: deny, allowedSecrets: [todo-db]}
      accessControl:
        defaultAction: deny
        trustDomain: public
        policies:
          - appId: worker
            defaultAction: deny
            trustDomain: public
            namespace: todo-app
            operations:
              - {name: /internal/**, httpVerb: [POST], action: allow}
    """
SECRETS = {"todo-db": {"connection-string": "postgresql://x"}, "todo-auth": {"key": "k"}}


@pytest.fixture(scope="module")
def configured(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sidecar, StubApp]]:
    sb: Sandbox = make_sandbox(tmp_path_factory.mktemp("policies"), broker.bootstrap,
                               {**BASE_DOCS, "config.yaml": CONFIG}, SECRETS)
    backend = start_app({"/internal/tasks": (200, {"ok": True}), "/public": (200, b"open")})
    sb.register("backend", backend.port)
    worker = sb.start("worker", None)
    yield worker, backend
    sb.stop_all()
    backend.stop()


def test_access_control_allows_only_the_listed_operations(configured: tuple[Sidecar, StubApp]) -> None:
    worker, backend = configured
    allowed = httpx.post(f"{worker.http}/v1.0/invoke/backend/method/internal/tasks", json={})
    assert allowed.status_code == 200
    assert allowed.json() == {"ok": True}
    for verb, path in (("GET", "internal/tasks"), ("POST", "public")):
        denied = httpx.request(verb, f"{worker.http}/v1.0/invoke/backend/method/{path}")
        assert denied.status_code == 403
        assert denied.json()["errorCode"] == "ERR_DIRECT_INVOKE"
        assert denied.json()["message"] == (
            "failed to invoke, id: backend, err: rpc error: code = PermissionDenied desc = access control "
            f"policy has denied access to id: spiffe://public/ns/todo-app/worker operation: {path} verb: {verb}")
    assert [r.method for r in backend.requests] == ["POST"]  # the denied calls never reached the app


def test_secret_scopes(configured: tuple[Sidecar, StubApp]) -> None:
    worker, _ = configured
    with worker.client() as client:
        assert client.get_secret("secretstore", "todo-db").secret == {"connection-string": "postgresql://x"}
        with pytest.raises(grpc.RpcError) as err:
            client.get_secret("secretstore", "todo-auth")
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.value.details() == 'access denied by policy to get "todo-auth" from "secretstore"'
        assert set(client.get_bulk_secret("secretstore").secrets) == {"todo-db"}


def test_policy_rules() -> None:
    spec = {"accessControl": {"defaultAction": "deny", "policies": [
        {"appId": "worker", "namespace": "todo-app", "defaultAction": "allow", "operations": [
            {"name": "/admin/*", "httpVerb": ["*"], "action": "deny"},
            {"name": "/internal/**", "httpVerb": ["GET"], "action": "deny"}]},
        {"appId": "other-ns", "namespace": "elsewhere", "defaultAction": "allow"}]},
        "secrets": {"scopes": [{"storeName": "s", "deniedSecrets": ["x"]}]}}
    p = Policies.from_configuration(spec)
    assert p.may_invoke("worker", "todo-app", "tasks/1", "POST")  # the app's defaultAction
    assert not p.may_invoke("worker", "todo-app", "admin/users", "PUT")  # `*` matches one segment, any verb
    assert not p.may_invoke("worker", "todo-app", "Internal/A/B", "GET")  # case-insensitive for HTTP
    assert p.may_invoke("worker", "todo-app", "internal/a", "POST")  # verb not listed: app default
    assert not p.may_invoke("frontend", "todo-app", "tasks", "GET")  # no policy: global default
    assert not p.may_invoke("other-ns", "todo-app", "tasks", "GET")  # namespace must match
    assert p.may_read_secret("s", "y")
    assert not p.may_read_secret("s", "x")
    assert p.may_read_secret("t", "x")
    assert Policies.from_configuration(None).may_invoke("anyone", "ns", "x", "GET")
