"""The sidecar's building blocks behind both APIs (gRPC and HTTP): one object per running sidecar.

The gRPC servicer and the HTTP handler only translate requests into calls here, so both speak
with the same validation, errors and policies, as daprd's `universal` API layer does.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dapr.proto.runtime.v1 import jobs_pb2
from google.protobuf import struct_pb2

from console.sandbox.sidecar import cloudevents, errors
from console.sandbox.sidecar.appchannel import AppChannel
from console.sandbox.sidecar.callscope import CallScope
from console.sandbox.sidecar.components import app_components
from console.sandbox.sidecar.invoke import Invoker, Registry
from console.sandbox.sidecar.jobs import JobStore
from console.sandbox.sidecar.kafka_pubsub import KafkaSettings, Producer, PublishError
from console.sandbox.sidecar.loopback import AppUnreachable
from console.sandbox.sidecar.policies import Policies
from console.sandbox.sidecar.protojson import value_json
from console.sandbox.sidecar.rbac import SecretAccess
from console.sandbox.sidecar.resiliency import BreakerOpenError, Resiliency, parse_duration
from console.sandbox.sidecar.resources import Resources, Subscription
from console.sandbox.sidecar.secrets import FileSecretStore, KubernetesSecretStore, SecretLookupError
from console.sandbox.sidecar.state_api import StateApi
from console.sandbox.sidecar.statestore import open_store
from console.sandbox.sidecar.subscriber import Subscriber, parse_programmatic
from console.sandbox.sidecar.topicscopes import TopicScopes

log = logging.getLogger(__name__)

# The daprd release the cluster pins (kustomize/operators/versions.env); "+sandbox" is semver build
# metadata, so version comparisons treat the sidecar as that release.
DAPR_VERSION = "1.18.3"
RUNTIME_VERSION = f"{DAPR_VERSION}+sandbox"
NAMESPACE = "todo-app"
DEFAULT_CONFIG = "todo-config"
ASSIGN_WAIT_S = 10.0
APP_PROTOCOLS = ("http",)  # daprd also speaks grpc, grpcs, https, h2c to apps; the sidecar does not
CAPABILITIES = {"state": ["ETAG", "TRANSACTIONAL", "TTL"], "pubsub": [], "secretstores": []}


@dataclass
class Options:
    """The command line (see cli.py), as the supervisor passes it."""

    app_id: str
    app_port: int | None
    dapr_http_port: int
    dapr_grpc_port: int
    resources_path: Path
    state_dir: Path
    kafka_bootstrap: str
    secrets_file: Path | None = None
    registry: Path | None = None
    database_url: str | None = None
    config: str | None = None  # the Configuration CR to apply (daprd's --config / dapr.io/config)
    app_protocol: str = "http"


def _parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool, which daprd uses for rawPayload."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"rawPayload value must be a valid boolean: actual is '{text}'")


@dataclass
class Runtime:
    options: Options
    resources: Resources
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        o = self.options
        self.app_id = o.app_id
        if o.app_protocol not in APP_PROTOCOLS:
            raise RuntimeError(f"app protocol {o.app_protocol} is not implemented by the dev sidecar: it calls its "
                               "app over HTTP only (no gRPC AppCallback; see console/sandbox/sidecar/README.md)")
        self.resiliency = Resiliency(self.resources.resiliency_specs)
        access = SecretAccess.for_app(self.resources.kubernetes, self.app_id, NAMESPACE)
        self.components, refusals = app_components(self.resources, builtin_secret_store=access.builtin_store)
        if refusals or self.resources.refusals:
            raise RuntimeError("; ".join([*refusals, *self.resources.refusals]))
        self.channel = AppChannel(o.app_port, self.stop)
        self.producers: dict[str, Producer] = {}
        self.kafka_settings: dict[str, KafkaSettings] = {}
        for comp in self.components:
            if comp.type == "pubsub.kafka":
                settings = KafkaSettings(
                    bootstrap=o.kafka_bootstrap,
                    consumer_group=self._expand(comp.metadata.get("consumerGroup", "{appID}")),
                    client_id=self._expand(comp.metadata.get("clientID", "{appID}")),
                    initial_offset=comp.metadata.get("initialOffset", "newest").lower(),
                    consume_retry_s=parse_duration(comp.metadata.get("consumeRetryInterval", "100ms")),
                    scopes=TopicScopes.from_metadata(comp.metadata, self.app_id),
                )
                self.kafka_settings[comp.name] = settings
                self.producers[comp.name] = Producer(settings)
        secrets_file = FileSecretStore(o.secrets_file)
        self.secret_stores = {
            c.name: KubernetesSecretStore(secrets_file, access, NAMESPACE, c.metadata.get("defaultNamespace", ""))
            for c in self.components if c.kind == "secretstores"}
        self.state = StateApi(self.app_id, NAMESPACE, {c.name: c for c in self.components if c.kind == "state"},
                              open_store(o.state_dir, o.database_url), self.resiliency, self.stop)
        self.policies = Policies.from_configuration(self._configuration())
        self.invoker = Invoker(Registry(o.registry), self.resiliency, self.app_id, NAMESPACE, self.policies)
        self.jobs = JobStore(o.state_dir / "jobs.db", self.app_id, NAMESPACE, self._trigger_job)
        self.subscriptions: list[Subscription] = []
        self.subscribers: list[Subscriber] = []
        self.outbound_ready = threading.Event()
        self.ready = threading.Event()

    def _configuration(self) -> dict[str, Any] | None:
        """--config by name; else `todo-config`, else the only Configuration found; else none."""
        found = self.resources.configurations
        name = self.options.config or (DEFAULT_CONFIG if DEFAULT_CONFIG in found else
                                       next(iter(found)) if len(found) == 1 else None)
        if name is None:
            return None
        if name not in found:
            log.warning("configuration not found; no access policies applied", extra={"config": name})
            return None
        log.info("configuration applied", extra={"config": name})
        return found[name]

    def _expand(self, value: str) -> str:
        """daprd's metadata templates: {appID}, {podName} (one pod per app here), {namespace}."""
        return value.replace("{appID}", self.app_id).replace("{podName}", self.app_id).replace(
            "{namespace}", NAMESPACE) or self.app_id

    # ---- lifecycle -------------------------------------------------------------------------------
    def start_background(self) -> None:
        """Jobs start now; subscriptions once the app listens (daprd's order)."""
        self.jobs.start()
        threading.Thread(target=self._start_app_side, name="app-init", daemon=True).start()

    def _start_app_side(self) -> None:
        if self.options.app_port is None:
            self.ready.set()
            return
        if not self.channel.wait_for_app():
            return
        subs = self._collect_subscriptions()
        by_pubsub: dict[str, list[Subscription]] = {}
        for sub in subs:
            if sub.pubsubname not in self.producers:
                log.warning("subscription names an unknown pubsub; skipped",
                            extra={"subscription": sub.name, "pubsub": sub.pubsubname})
                continue
            if not self.kafka_settings[sub.pubsubname].scopes.may_subscribe(sub.topic):
                log.warning("subscription not allowed by the component's topic scopes; skipped",
                            extra={"subscription": sub.name, "pubsub": sub.pubsubname, "topic": sub.topic})
                continue
            by_pubsub.setdefault(sub.pubsubname, []).append(sub)
        for name, subs_for in by_pubsub.items():
            subscriber = Subscriber(
                app_id=self.app_id, pubsub=name, settings=self.kafka_settings[name], subscriptions=subs_for,
                channel=self.channel, policy=self.resiliency.component_policy(name, "inbound", "Pubsub"),
                producer=self.producers[name], stop=self.stop,
            )
            self.subscribers.append(subscriber)
            subscriber.start()
        for subscriber in self.subscribers:
            if not subscriber.assigned.wait(ASSIGN_WAIT_S):
                log.warning("subscriptions not assigned yet (broker down or topics missing); reporting ready anyway",
                            extra={"pubsub": subscriber.pubsub})
        log.info("dapr initialized. Status: Running", extra={"subscriptions": [s.topic for s in self.subscriptions]})
        self.ready.set()

    def _collect_subscriptions(self) -> list[Subscription]:
        """Declarative subscriptions plus the app's GET /dapr/subscribe (one route per pubsub+topic)."""
        subs = list(self.resources.subscriptions)
        try:
            resp = self.channel.request("GET", "/dapr/subscribe", timeout_s=5.0)
            if resp.status_code == 200 and resp.content.strip():
                subs.extend(parse_programmatic(json.loads(resp.content)))
        except (AppUnreachable, ValueError) as exc:  # an app without the endpoint, or an invalid answer
            log.info("no programmatic subscriptions", extra={"error": str(exc)})
        unique: dict[tuple[str, str], Subscription] = {}
        for sub in subs:
            key = (sub.pubsubname, sub.topic)
            if key in unique:
                log.warning("duplicate subscription for topic ignored", extra={"subscription": sub.name,
                                                                               "topic": sub.topic})
                continue
            unique[key] = sub
        self.subscriptions = list(unique.values())
        return self.subscriptions

    def shutdown(self) -> None:
        """Stop consumers (committing what was handled), jobs, and clients."""
        self.stop.set()
        for subscriber in self.subscribers:
            subscriber.join(timeout=10)
        self.jobs.stop()
        for producer in self.producers.values():
            try:
                producer.close()
            except Exception:  # a producer that cannot flush to a dead broker
                log.debug("producer close failed", exc_info=True)
        self.invoker.close()
        self.channel.close()
        self.state.backend.close()

    # ---- pub/sub -----------------------------------------------------------------------------
    def publish(self, pubsub: str, topic: str, data: bytes, content_type: str, metadata: dict[str, str],
                traceparent: str | None = None, tracestate: str = "", correlation_id: str | None = None,
                call: CallScope | None = None) -> None:
        """daprd's PublishEvent: validate, envelope (unless rawPayload), publish under the outbound policy.

        `call` is the caller's deadline/cancellation: as in daprd, the retries stop with the caller's
        context, so a client that gave up does not get its message published later behind its back.
        """
        if not pubsub:
            raise errors.pubsub_name_empty()
        producer = self.producers.get(pubsub)
        if producer is None:
            raise errors.pubsub_not_found(pubsub)
        if not topic:
            raise errors.pubsub_topic_empty(pubsub)
        md = dict(metadata)
        if not self.kafka_settings[pubsub].scopes.may_publish(topic):
            raise errors.pubsub_forbidden(pubsub, topic, self.app_id)
        try:
            raw = _parse_bool(md["rawPayload"]) if md.get("rawPayload") else False
        except ValueError as exc:
            raise errors.pubsub_metadata(pubsub, str(exc)) from None
        span = cloudevents.child_traceparent(traceparent)
        if raw:
            md["traceid"], md["tracestate"] = span, tracestate
            payload = data
        else:
            try:
                if cloudevents.is_cloudevent_content_type(content_type):
                    event = cloudevents.from_app_cloudevent(data, topic=topic, pubsub=pubsub,
                                                            traceparent=span, tracestate=tracestate)
                else:
                    event = cloudevents.new_envelope(data=data, content_type=content_type, source=self.app_id,
                                                     topic=topic, pubsub=pubsub, traceparent=span,
                                                     tracestate=tracestate, metadata=md)
                cloudevents.apply_ttl(event, md)
            except (ValueError, TypeError) as exc:
                raise errors.pubsub_cloudevent(pubsub, self.app_id, str(exc)) from None
            payload = json.dumps(event, separators=(",", ":")).encode()
        if correlation_id and "x-correlation-id" not in md:
            md["x-correlation-id"] = correlation_id  # sandbox extension, see README
        policy = self.resiliency.component_policy(pubsub, "outbound", "Pubsub")
        try:
            if call is None:  # HTTP publish: bounded by the sidecar's lifetime only
                policy.run(lambda timeout: producer.send(topic, payload, md, timeout), stop=self.stop)
            else:
                policy.run(lambda timeout: producer.send(topic, payload, md, call.bound(timeout)), stop=call)
        except (PublishError, BreakerOpenError) as exc:
            log.warning("publish failed", extra={"pubsub": pubsub, "topic": topic, "error": str(exc)})
            raise errors.pubsub_publish(pubsub, topic, str(exc)) from None

    # ---- secrets -----------------------------------------------------------------------------
    def _secret_store(self, store: str) -> KubernetesSecretStore:
        """daprd's secretsValidateRequest: no store at all is "not configured", an unknown one "not found"."""
        if not self.secret_stores:
            raise errors.secret_store_not_configured()
        found = self.secret_stores.get(store)
        if found is None:
            raise errors.secret_store_not_found(store)
        return found

    def get_secret(self, store: str, key: str, metadata: dict[str, str] | None = None) -> dict[str, str]:
        """pkg/api/universal/secrets.go GetSecret: scopes first, then the store under its outbound policy."""
        component = self._secret_store(store)
        if not self.policies.may_read_secret(store, key):
            log.warning("secret denied by the Configuration's secret scopes", extra={"store": store, "key": key})
            raise errors.secret_denied(key, store)
        policy = self.resiliency.component_policy(store, "outbound", "Secretstore")
        try:
            return policy.run(lambda _timeout: component.get(key, metadata or {}), stop=self.stop)
        except (SecretLookupError, BreakerOpenError) as exc:
            raise errors.secret_get(key, store, str(exc)) from None

    def bulk_secrets(self, store: str, metadata: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
        """GetBulkSecret: the store's whole list (a `list` on the API server), filtered by the secret scopes."""
        component = self._secret_store(store)
        policy = self.resiliency.component_policy(store, "outbound", "Secretstore")
        try:
            found = policy.run(lambda _timeout: component.bulk(metadata or {}), stop=self.stop)
        except (SecretLookupError, BreakerOpenError) as exc:
            raise errors.bulk_secret_get(store, str(exc)) from None
        return {k: v for k, v in found.items() if self.policies.may_read_secret(store, k)}

    # ---- jobs --------------------------------------------------------------------------------
    def _trigger_job(self, name: str, job: jobs_pb2.Job) -> bool:
        """POST /job/<name> on the app (daprd's HTTP channel TriggerJob); True when the trigger is handled.

        2xx is handled; so is 404, which daprd's scheduler streamer logs as an error and does not
        retry (pkg/runtime/scheduler/internal/cluster/streamer.go invokeApp); anything else, or no
        answer, is a failure for the job's failure policy.
        """
        if not self.channel.ready.is_set() and not self.channel.wait_for_app():
            return False
        body = b""
        if job.HasField("data"):
            if job.data.type_url == "type.googleapis.com/google.protobuf.Value":
                value = struct_pb2.Value()
                job.data.Unpack(value)
                body = value_json(value)
            else:
                body = job.data.value.strip()
        try:
            resp = self.channel.request("POST", f"/job/{name.lstrip('/')}", body=body,
                                        headers=[("content-type", "application/json")])
        except AppUnreachable as exc:
            log.warning("job trigger failed", extra={"job": name, "error": str(exc)})
            return False
        if resp.status_code == 404:
            log.error("non-retriable error returned from app while processing triggered job %s. "
                      "status code returned: 5", name)
            return True
        log.debug("job triggered", extra={"job": name, "status": resp.status_code})  # debug: one line per job fired
        return 200 <= resp.status_code <= 299
