"""Component scopes and the secret store's RBAC, with the product's own manifests (kustomize/base).

Scopes: daprd loads only the Components whose `scopes` name the app (pkg/runtime/processor); for an
app outside them the component does not exist: pkg/api/errors/state.go (no state store at all:
NotConfigured, FailedPrecondition/500; another name: NotFound, InvalidArgument/400),
pkg/api/errors/pubsub.go NotFound (InvalidArgument/404), pkg/messages/predefined.go
ErrSecretStoreNotFound (InvalidArgument/401). In Kubernetes mode every app also has the built-in
`kubernetes` secret store (pkg/runtime/runtime.go appendBuiltinSecretStore).
RBAC: components-contrib secretstores/kubernetes reads with the pod's ServiceAccount; the API
server's 403 text (k8s.io/apiserver responsewriters forbiddenMessage) comes back inside daprd's
ErrSecretGet / ErrBulkSecretGet. kustomize/base/<app>-role.yaml names each app's secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from console.sandbox.broker import Broker
from console.sandbox.sidecar.rbac import Forbidden, SecretAccess
from tests.utils.sidecars import PRODUCT_RESOURCES, Sandbox, Sidecar, make_sandbox

SECRETS = {"todo-db": {"connection-string": "postgresql://db"}, "todo-internal": {"token": "t"},
           "todo-auth": {"jwt-secret": "j"}}


def forbidden(verb: str, app: str, name: str | None = None) -> str:
    target = f'secrets "{name}"' if name else "secrets"
    return (f'{target} is forbidden: User "system:serviceaccount:todo-app:{app}" cannot {verb} resource "secrets" '
            'in API group "" in the namespace "todo-app"')


@pytest.fixture(scope="module")
def product(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = make_sandbox(tmp_path_factory.mktemp("product"), broker.bootstrap, secrets=SECRETS,
                      resources=PRODUCT_RESOURCES)
    yield sb
    sb.stop_all()


@pytest.fixture(scope="module")
def frontend(product: Sandbox) -> Sidecar:
    return product.start("frontend", None)


@pytest.fixture(scope="module")
def worker(product: Sandbox) -> Sidecar:
    return product.start("worker", None)


def test_an_app_outside_the_scopes_has_none_of_those_components(frontend: Sidecar) -> None:
    assert [c["name"] for c in httpx.get(f"{frontend.http}/v1.0/metadata").json()["components"]] == ["kubernetes"]
    secret = httpx.get(f"{frontend.http}/v1.0/secrets/secretstore/todo-internal")
    assert (secret.status_code, secret.json()) == (401, {"errorCode": "ERR_SECRET_STORE_NOT_FOUND",
                                                         "message": "failed finding secret store with key secretstore"})
    state = httpx.post(f"{frontend.http}/v1.0/state/statestore", json=[{"key": "k", "value": 1}])
    assert (state.status_code, state.json()) == (500, {"errorCode": "ERR_STATE_STORE_NOT_CONFIGURED",
                                                       "message": "state store statestore is not configured"})
    publish = httpx.post(f"{frontend.http}/v1.0/publish/kafka-pubsub/task-events", json={})
    assert (publish.status_code, publish.json()) == (404, {"errorCode": "ERR_PUBSUB_NOT_FOUND",
                                                           "message": "pubsub kafka-pubsub is not found"})
    with frontend.client() as client:
        with pytest.raises(grpc.RpcError) as err:
            client.get_state("statestore", "k")
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as err:
            client.publish_event("kafka-pubsub", "task-events", b"{}")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            client.get_secret("secretstore", "todo-internal")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # the built-in store is there, but the frontend's ServiceAccount may read no Secret
        with pytest.raises(grpc.RpcError) as err:
            client.get_secret("kubernetes", "todo-internal")
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert err.value.details() == ("failed getting secret with key todo-internal from secret store kubernetes: "
                                       + forbidden("get", "frontend", "todo-internal"))


def test_an_app_reads_only_the_secrets_its_role_names(worker: Sidecar) -> None:
    # worker-role.yaml: get on todo-internal only; todo-config's secret scopes would allow todo-db
    with worker.client() as client:
        assert client.get_secret("secretstore", "todo-internal").secret == {"token": "t"}
        with pytest.raises(grpc.RpcError) as err:
            client.get_secret("secretstore", "todo-db")
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert err.value.details() == ("failed getting secret with key todo-db from secret store secretstore: "
                                       + forbidden("get", "worker", "todo-db"))
        with pytest.raises(grpc.RpcError) as err:  # RBAC is checked before existence
            client.get_secret("kubernetes", "no-such-secret")
        assert (err.value.details() or "").endswith(forbidden("get", "worker", "no-such-secret"))
    bulk = httpx.get(f"{worker.http}/v1.0/secrets/secretstore/bulk")  # a bulk read lists: no Role allows it
    assert (bulk.status_code, bulk.json()) == (500, {
        "errorCode": "ERR_SECRET_GET",
        "message": "failed getting secrets from secret store secretstore: " + forbidden("list", "worker")})


def test_rbac_rules() -> None:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "ns"},
         "spec": {"template": {"metadata": {"annotations": {"dapr.io/app-id": "api"}},
                               "spec": {"serviceAccountName": "api-sa"}}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "one", "namespace": "ns"},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]},
                   {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "one", "namespace": "ns"},
         "roleRef": {"kind": "Role", "name": "one"}, "subjects": [{"kind": "ServiceAccount", "name": "api-sa"}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "lister"},
         "rules": [{"apiGroups": ["*"], "resources": ["secrets"], "verbs": ["list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "all-sa"},
         "roleRef": {"kind": "ClusterRole", "name": "lister"},
         "subjects": [{"kind": "Group", "name": "system:serviceaccounts"}]},
    ]
    api = SecretAccess.for_app(docs, "api", "default")
    assert api.user == "system:serviceaccount:ns:api-sa"
    api.check("get", "ns", "a")
    api.check("list", "elsewhere")  # the ClusterRoleBinding grants list everywhere
    for verb, namespace, name in (("get", "ns", "b"), ("get", "other", "a"), ("watch", "ns", None)):
        with pytest.raises(Forbidden):
            api.check(verb, namespace, name)
    with pytest.raises(Forbidden) as err:
        SecretAccess.for_app(docs, "no-deployment", "ns").check("get", "ns", "a")  # the `default` account
    assert 'User "system:serviceaccount:ns:default" cannot get' in str(err.value)
    SecretAccess.for_app(docs[:1], "api", "ns").check("get", "ns", "anything")  # no RBAC objects: not modelled
