"""Topic scoping on the pubsub component (allowedTopics, protectedTopics, publishingScopes,
subscriptionScopes), which kustomize/base's kafka-pubsub uses and daprd enforces.

https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-scopes/ ;
semantics from dapr/dapr pkg/scopes/scopes.go and IsOperationAllowed (pkg/runtime/pubsub/adapter.go),
error from pkg/api/errors/pubsub.go PublishForbidden (PermissionDenied).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

import grpc
import pytest
from dapr.clients.exceptions import DaprGrpcError

from console.sandbox.broker import Broker
from console.sandbox.sidecar.topicscopes import TopicScopes
from tests.utils.kafka_topics import create_topics
from tests.utils.sidecars import Sandbox, make_sandbox
from tests.utils.stub_apps import StubApp, start_app

from .shared_resources import kafka_pubsub_component

SCOPED_COMPONENT = kafka_pubsub_component(
    '{name: clientID, value: "{appID}"}', "{name: initialOffset, value: oldest}",
    '{name: allowedTopics, value: "scoped-a,scoped-b,scoped-c"}',
    '{name: publishingScopes, value: "limited=scoped-a;mute="}',
    '{name: subscriptionScopes, value: "subber=scoped-a"}',
) + textwrap.dedent("""\
    ---
    apiVersion: dapr.io/v2alpha1
    kind: Subscription
    metadata: {name: subber-a}
    spec: {pubsubname: kafka-pubsub, topic: scoped-a, routes: {default: /a}}
    scopes: [subber]
    ---
    apiVersion: dapr.io/v2alpha1
    kind: Subscription
    metadata: {name: subber-b}
    spec: {pubsubname: kafka-pubsub, topic: scoped-b, routes: {default: /b}}
    scopes: [subber]
    """)


def test_scope_rules() -> None:
    md = {"allowedTopics": "a, b,c", "protectedTopics": "c", "publishingScopes": "x=a,c;y=",
          "SubscriptionScopes": "x=b"}
    x, y, z = (TopicScopes.from_metadata(md, app) for app in ("x", "y", "z"))
    assert [x.may_publish(t) for t in "abcd"] == [True, False, True, False]
    assert [y.may_publish(t) for t in "abc"] == [False, False, False]  # "y=": nothing
    assert [z.may_publish(t) for t in "abcd"] == [True, True, False, False]  # not listed; c is protected
    assert [x.may_subscribe(t) for t in "abc"] == [False, True, False]  # key matched case-insensitively


@pytest.fixture(scope="module")
def scoped(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, StubApp]]:
    create_topics(broker.bootstrap, {"scoped-a": 1, "scoped-b": 1, "scoped-c": 1})
    sb = make_sandbox(tmp_path_factory.mktemp("scoped"), broker.bootstrap, {"pubsub.yaml": SCOPED_COMPONENT})
    app = start_app({"/a": (200, b""), "/b": (200, b"")})
    yield sb, app
    app.stop()
    sb.stop_all()


def test_publishing_outside_the_scopes_is_permission_denied(scoped: tuple[Sandbox, StubApp]) -> None:
    sb, _ = scoped
    limited = sb.start("limited", None)
    with limited.client() as client:
        client.publish_event("kafka-pubsub", "scoped-a", b"{}", data_content_type="application/json")
        for topic in ("scoped-b", "not-allowed-anywhere"):
            with pytest.raises(DaprGrpcError) as err:
                client.publish_event("kafka-pubsub", topic, b"{}")
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert err.value.details() == f"topic {topic} is not allowed for app id limited"
            assert err.value.error_code() == "DAPR_PUBSUB_FORBIDDEN"


def test_subscriptions_outside_the_scopes_are_not_started(scoped: tuple[Sandbox, StubApp]) -> None:
    sb, app = scoped
    publisher = sb.start("anyone", None)
    with publisher.client() as client:
        client.publish_event("kafka-pubsub", "scoped-b", b"{}", data_content_type="application/json")
        client.publish_event("kafka-pubsub", "scoped-a", json.dumps({"n": 1}), data_content_type="application/json")
    subber = sb.start("subber", app.port)  # initialOffset oldest: reads what is already there
    app.wait_calls("/a")
    assert app.calls("/b") == []
    assert any(line.get("msg", "").startswith("subscription not allowed") and line.get("topic") == "scoped-b"
               for line in subber.logs())
