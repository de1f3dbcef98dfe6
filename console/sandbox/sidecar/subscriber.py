"""Subscriptions: consume the app's topics from Kafka and deliver CloudEvents to its routes.

Modelled on dapr/dapr pkg/runtime/subscription (subscription.go, postman/http/http.go) and the
Kafka component's consumer (components-contrib common/component/kafka/consumer.go):
- the app's answer: 2xx with an empty/non-JSON body or {"status": "SUCCESS"|""} -> ack;
  {"status": "RETRY"}, an unknown status, a non-2xx status or no answer -> retry (the
  inbound resiliency policy of the pubsub component); {"status": "DROP"} or 404 -> dropped
  with a warning/error log, and sent to the dead-letter topic when the subscription has one.
- after the policy gives up the message goes to `deadLetterTopic`; without one, daprd hands
  the error back to the Kafka component, which retries the message forever (blocking the
  partition), and so do we.
- every message carries metadata __key/__topic/__partition/__offset/__timestamp, its Kafka
  headers and pubsubName; daprd sends those as HTTP headers to the app and as headers of the
  dead-letter message. We add x-dlq-* headers saying why (see README).
Offsets are committed under the component's consumerGroup ("{appID}" -> the app-id) only after
the app acknowledged, or the message was dead-lettered or dropped. Each partition is delivered in
order by its own worker (partitions.py), so a message in retry holds back only its partition.
Partitions are assigned directly (no group membership), see README for why.
Subscriptions with bulkSubscribe.enabled get their partition's messages in batches instead, through
bulk.py (one POST per batch and route, per-entry statuses); the offsets commit per whole batch.
Docs: https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-deadletter/
and https://docs.dapr.io/reference/api/pubsub_api/#expected-http-response
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from console.sandbox.sidecar import cloudevents
from console.sandbox.sidecar.appchannel import AppChannel
from console.sandbox.sidecar.kafka_pubsub import LIBRDKAFKA_LOGGER, KafkaSettings, Producer, PublishError
from console.sandbox.sidecar.loopback import AppUnreachable
from console.sandbox.sidecar.partitions import BatchLimits, PartitionWorkers
from console.sandbox.sidecar.records import Partition, Record, from_message
from console.sandbox.sidecar.resiliency import PermanentError, Policy, StatusError
from console.sandbox.sidecar.resources import ROUTE_RULES_REFUSED, BulkSubscribe, Subscription

log = logging.getLogger(__name__)

# tansu answers a fetch when this wait expires, not when data arrives, so it bounds delivery latency;
# the price is idle polling, by the sidecar and by tansu. At 10 ms an idle sandbox burnt 55% of a
# core (each subscribing sidecar ~8%, tansu ~18%); at 25 ms 31%, and under API load the freed CPU
# more than paid for the longer wait (commit -> worker p99 59 ms vs 81 ms). SIDECAR_FETCH_MAX_WAIT_MS tunes it.
FETCH_MAX_WAIT_MS = int(os.environ.get("SIDECAR_FETCH_MAX_WAIT_MS", "25"))
# How long the consumer thread waits for a message before it looks after finished deliveries (their
# offsets are committed every COMMIT_INTERVAL_S anyway) and paused partitions; a message wakes it at
# once. At 50 ms the loop alone was a third of an idle sidecar's CPU.
POLL_TIMEOUT_MS = 250
COMMIT_INTERVAL_S = 1.0  # sarama's Consumer.Offsets.AutoCommit.Interval, which daprd's Kafka component uses
BATCH_MAX = 500  # messages taken from librdkafka's queue per poll
PAUSE_AT, RESUME_BELOW = 500, 100  # records buffered per partition
TOPIC_RECHECK_S = 1.0  # while a subscribed topic is missing
PARTITION_RECHECK_S = 5.0  # afterwards, to pick up added partitions
DEFAULT_DELIVERY_TIMEOUT_S = 60.0


class Dropped(Exception):
    """The app asked to drop the message (DROP status or 404): no retry; dead-lettered if configured."""


@dataclass
class Outcome:
    """How one message ended, for the log and the dead-letter headers."""

    result: str  # delivered | dropped | dead-lettered
    attempts: int = 0
    status: int | None = None
    error: str = ""


@dataclass
class _Attempts:
    count: int = 0
    status: int | None = None
    error: str = ""


def record_metadata(record: Record, pubsub: str) -> dict[str, str]:
    """The Kafka component's GetEventMetadata plus daprd's pubsubName."""
    md: dict[str, str] = {}
    if record.key is not None:
        md["__key"] = record.key.decode(errors="replace")
    md["__offset"] = str(record.offset)
    md["__topic"] = record.topic
    md["__timestamp"] = str(record.timestamp)
    md["__partition"] = str(record.partition)
    for key, value in record.headers or []:
        md[key] = (value or b"").decode(errors="replace")
    md["pubsubName"] = pubsub
    return md


def parse_programmatic(body: Any) -> list[Subscription]:
    """The app's GET /dapr/subscribe answer.

    Items: {pubsubname, topic, route | routes, metadata, deadLetterTopic, bulkSubscribe} (daprd's
    SubscriptionJSON in pkg/runtime/pubsub/subscriptions.go). An item with routes.rules is refused
    (not started, with an error log): the sidecar does not evaluate CEL route rules.
    """
    subs = []
    for item in body if isinstance(body, list) else []:
        if not isinstance(item, dict) or not item.get("pubsubname") or not item.get("topic"):
            continue
        routes = item.get("routes") or {}
        if routes.get("rules"):
            log.error("subscription refused", extra={"topic": item["topic"], "error": ROUTE_RULES_REFUSED})
            continue
        subs.append(Subscription(
            name=f"programmatic-{item['topic']}", pubsubname=str(item["pubsubname"]), topic=str(item["topic"]),
            default_route=str(routes.get("default") or item.get("route") or ""),
            dead_letter_topic=str(item.get("deadLetterTopic") or ""),
            metadata={str(k): str(v) for k, v in (item.get("metadata") or {}).items()}, declarative=False,
            bulk=BulkSubscribe.parse(item.get("bulkSubscribe")),
        ))
    return subs


def _app_status(body: bytes) -> str:
    """The `status` of the app's answer as Go's json.Decode into AppResponse reads it.

    Empty or undecodable bodies (not JSON, not an object, a non-string status) count as success,
    the key matches case-insensitively, the value does not ("success" is an unknown status).
    """
    try:
        answer = json.loads(body) if body.strip() else None
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    for key, value in answer.items():
        if key.lower() == "status":
            return value if isinstance(value, str) else ""
    return ""


def _header_safe(items: dict[str, str]) -> dict[str, str]:
    """HTTP can carry only printable ASCII header names/values; others stay in the Kafka headers only."""
    out = {}
    for k, v in items.items():
        if k.isascii() and k.isprintable() and " " not in k and ":" not in k and v.isascii() and v.isprintable():
            out[k] = v
    return out


@dataclass
class Subscriber:
    """One Kafka consumer for all of the app's subscriptions on one pubsub component."""

    app_id: str
    pubsub: str
    settings: KafkaSettings
    subscriptions: list[Subscription]
    channel: AppChannel
    policy: Policy
    producer: Producer
    stop: threading.Event
    assigned: threading.Event = field(default_factory=threading.Event)
    _consumer: Consumer | None = None
    _pending: dict[Partition, int] = field(default_factory=dict)
    _fetched: dict[Partition, int] = field(default_factory=dict)
    _paused: set[Partition] = field(default_factory=set)
    _committed_at: float = 0.0
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        from console.sandbox.sidecar.bulk import BulkDelivery  # bulk.py builds on this module

        self.by_topic = {s.topic: s for s in self.subscriptions}
        self.bulk = BulkDelivery(self)
        self.workers = PartitionWorkers(self._handle, self.stop, self.bulk.deliver, self._batch_limits)

    def _batch_limits(self, topic: str) -> BatchLimits | None:
        """Bulk-subscribed topics are delivered in batches (bulk.py), the others one by one."""
        sub = self.by_topic.get(topic)
        if sub is None or not sub.bulk.enabled:
            return None
        return BatchLimits(sub.bulk.max_messages, sub.bulk.max_await_ms / 1000)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"subscriber-{self.pubsub}", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- consuming ------------------------------------------------------------------------------
    def _new_consumer(self) -> Consumer:
        return Consumer({
            "bootstrap.servers": self.settings.bootstrap,
            "client.id": f"{self.settings.client_id}-consumer",
            "group.id": self.settings.consumer_group,  # commits only: partitions are assigned, no membership
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",  # only for positions lost to a broker restart (see _assign)
            "fetch.wait.max.ms": FETCH_MAX_WAIT_MS,
            "socket.nagle.disable": True,
            "queued.max.messages.kbytes": 4096,  # prefetch per partition; the workers pause at PAUSE_AT anyway
            "socket.timeout.ms": 5000,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 30000,  # _loop asks for new topics and partitions itself
            "enable.metrics.push": False,  # no KIP-714 telemetry requests (sarama, daprd's client, sends none)
            "logger": LIBRDKAFKA_LOGGER,
        })

    def _run(self) -> None:
        backoff = 0.5
        try:
            while not self.stop.is_set():
                try:
                    if self._consumer is None:
                        self._consumer = self._new_consumer()
                        backoff = 0.5
                    self._loop(self._consumer)
                except Exception as exc:
                    log.warning("kafka consumer failed; reconnecting", extra={
                        "error": f"{type(exc).__name__}: {exc}", "retry_in_s": backoff})
                    self._close_consumer()
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self.workers.join(timeout=5)  # let deliveries in flight finish, then commit them
            self._pending.update(self.workers.take_done())
            self._flush_commits()
            self._close_consumer()

    def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except (KafkaException, RuntimeError):  # best effort on a broken client
                log.debug("consumer close failed", exc_info=True)

    def _assign(self, consumer: Consumer, first: bool) -> None:
        """Assign every partition of the subscribed topics that exist; set start positions.

        A partition with a committed offset resumes there. Otherwise the component's
        initialOffset decides (newest by default, as daprd); a topic that appears after the
        sidecar started is read from its beginning, so nothing published to it is missed.
        "Newest" is resolved to an offset here, before `assigned` is set, so a message
        published once the sidecar reports ready is never skipped.
        """
        existing = consumer.list_topics(timeout=5).topics
        wanted = [t for t in self.by_topic if t in existing and existing[t].error is None]
        current = {Partition(tp.topic, tp.partition) for tp in consumer.assignment()}
        new = sorted({Partition(t, p) for t in wanted for p in existing[t].partitions} - current)
        if new:
            committed = {Partition(tp.topic, tp.partition): tp.offset for tp in
                         consumer.committed([TopicPartition(t, p) for t, p in new], timeout=5)}
            starts = []
            for tp in new:
                if tp in self._fetched:  # a reconnect: continue after what the workers already hold
                    offset = self._fetched[tp]
                elif committed.get(tp, -1) >= 0:
                    offset = committed[tp]
                elif first and self.settings.initial_offset != "oldest":
                    offset = consumer.get_watermark_offsets(TopicPartition(*tp), timeout=5)[1]
                else:
                    offset = OFFSET_BEGINNING
                starts.append(TopicPartition(tp.topic, tp.partition, offset))
            consumer.incremental_assign(starts)
            log.info("partitions assigned", extra={
                "group": self.settings.consumer_group, "partitions": [f"{t}/{p}" for t, p in new],
            })
        if len(wanted) == len(self.by_topic):
            self.assigned.set()

    def _loop(self, consumer: Consumer) -> None:
        first = not self.assigned.is_set()
        self._assign(consumer, first)
        first = False
        last_check = time.monotonic()
        while not self.stop.is_set():
            recheck = TOPIC_RECHECK_S if not self.assigned.is_set() else PARTITION_RECHECK_S
            if time.monotonic() - last_check > recheck:  # topics created or grown since
                self._assign(consumer, first)
                last_check = time.monotonic()
            self._pending.update(self.workers.take_done())
            if time.monotonic() - self._committed_at >= COMMIT_INTERVAL_S:
                self._flush_commits()
            for tp in [tp for tp in self._paused if self.workers.backlog(tp) <= RESUME_BELOW]:
                # Fetch again from right after what the workers hold: what librdkafka had buffered
                # for the partition when it was paused was skipped below.
                consumer.seek(TopicPartition(tp.topic, tp.partition, self._fetched[tp]))
                consumer.resume([TopicPartition(tp.topic, tp.partition)])
                self._paused.discard(tp)
            batch: dict[Partition, list[Record]] = {}
            for message in self._take(consumer):
                error = message.error()
                if error is not None:
                    if error.fatal():
                        raise KafkaException(error)
                    log.debug("kafka consumer error", extra={"error": error.str()})  # librdkafka retries itself
                    continue
                record = from_message(message)
                if record.where not in self._paused:
                    batch.setdefault(record.where, []).append(record)
            for tp, records in batch.items():
                self.workers.submit(tp, records)
                self._fetched[tp] = records[-1].offset + 1
                if self.workers.backlog(tp) >= PAUSE_AT:  # a slow partition: stop fetching it for now
                    consumer.pause([TopicPartition(tp.topic, tp.partition)])
                    self._paused.add(tp)

    @staticmethod
    def _take(consumer: Consumer) -> list[Message]:
        """What librdkafka has buffered, as soon as there is anything: `consume(n, timeout)` alone waits
        until it has n messages or the timeout passed, which put up to 50 ms on every delivery."""
        first = consumer.poll(POLL_TIMEOUT_MS / 1000)
        return [] if first is None else [first, *consumer.consume(BATCH_MAX - 1, 0)]

    def _flush_commits(self) -> None:
        """Commit handled offsets; kept pending (and retried) while the broker is away."""
        self._committed_at = time.monotonic()
        if not self._pending or self._consumer is None:
            return
        offsets = [TopicPartition(tp.topic, tp.partition, offset) for tp, offset in self._pending.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            self._pending.clear()
        except KafkaException as exc:
            log.debug("offset commit failed; will retry", extra={"error": str(exc)})

    # ---- one message ----------------------------------------------------------------------------
    def _handle(self, record: Record) -> bool:
        """Deliver, drop or dead-letter one message; False if shutdown interrupted it (no commit)."""
        sub = self.by_topic.get(record.topic)
        if sub is None:
            return True
        metadata = record_metadata(record, self.pubsub)
        data = record.value or b""
        raw = str(sub.metadata.get("rawPayload", "false")).lower() == "true"
        try:
            if raw:
                event = cloudevents.from_raw_payload(data, record.topic, self.pubsub, metadata)
                data = json.dumps(event).encode()
            else:
                event = json.loads(data)
                if not isinstance(event, dict):
                    raise TypeError("cloud event is not a JSON object")
        except (ValueError, TypeError) as exc:
            log.error("error deserializing cloud event", extra={"topic": record.topic, "error": str(exc)})
            return self._fail(record, sub, metadata,
                              Outcome("failed", 0, None, f"error deserializing cloud event: {exc}"))
        if cloudevents.has_expired(event):
            log.warning("dropping expired pub/sub event", extra={"id": event.get("id"), "topic": record.topic})
            return self.dead_letter_if_any(record, sub, metadata, Outcome("dropped", 0, None, "expired"))
        if not self.channel.ready.is_set() and not self.channel.wait_for_app():
            return False
        return self._deliver(record, sub, metadata, event, data, sub.default_route)

    def _deliver(self, record: Record, sub: Subscription, metadata: dict[str, str],
                 event: dict[str, Any], data: bytes, path: str) -> bool:
        state = _Attempts()
        headers = _header_safe(metadata)
        headers["content-type"] = cloudevents.CLOUDEVENT_CONTENT_TYPE
        trace = event.get("traceparent") or event.get("traceid")
        if isinstance(trace, str) and trace:
            headers["traceparent"] = cloudevents.child_traceparent(trace)
            if isinstance(event.get("tracestate"), str) and event["tracestate"]:
                headers["tracestate"] = event["tracestate"]

        def attempt(timeout: float | None) -> None:
            state.count += 1
            self._post(path, data, headers, timeout, event, state)

        while not self.stop.is_set():
            try:
                self.policy.run(attempt, stop=self.stop)
                log.debug("delivered", extra={"id": event.get("id"), "topic": record.topic, "attempts": state.count})
                return True
            except Dropped as exc:
                return self.dead_letter_if_any(record, sub, metadata,
                                               Outcome("dropped", state.count, state.status, str(exc)))
            except Exception as exc:
                if self.stop.is_set():
                    return False
                outcome = Outcome("failed", state.count, state.status, state.error or str(exc))
                if sub.dead_letter_topic:
                    return self.dead_letter(record, sub, metadata, outcome)
                # no dead-letter topic: the Kafka component retries the message, forever
                log.warning("delivery failed; the component retries", extra={
                    "id": event.get("id"), "topic": record.topic, "attempts": state.count, "error": outcome.error})
                state = _Attempts()
                self.stop.wait(self.settings.consume_retry_s)
        return False

    def _post(self, path: str, data: bytes, headers: dict[str, str], timeout: float | None,
              event: dict[str, Any], state: _Attempts) -> None:
        """One delivery attempt, judged as postman/http Deliver does."""
        event_id = event.get("id")
        try:
            resp = self.channel.request("POST", "/" + path.lstrip("/"), body=data, headers=headers.items(),
                                        timeout_s=timeout or DEFAULT_DELIVERY_TIMEOUT_S)
        except AppUnreachable as exc:
            state.status, state.error = None, f"error returned from app channel while sending pub/sub event to app: {exc}"
            raise RuntimeError(state.error) from None
        state.status = resp.status_code
        if 200 <= resp.status_code <= 299:
            status = _app_status(resp.content)
            if status in ("", "SUCCESS"):
                return
            if status == "DROP":
                log.warning("DROP status returned from app while processing pub/sub event %s", event_id)
                state.error = "DROP status returned from app"
                raise PermanentError(Dropped(state.error))
            if status == "RETRY":
                state.error = f"RETRY status returned from app while processing pub/sub event {event_id}"
            else:
                state.error = (f"unknown status returned from app while processing pub/sub event {event_id}, "
                               f"status: {status}")
            raise RuntimeError(state.error)
        body = resp.content.decode(errors="replace")
        if resp.status_code == 404:
            log.error("non-retriable error returned from app while processing pub/sub event %s: %s. "
                      "status code returned: 404", event_id, body)
            state.error = "non-retriable error returned from app: status code 404"
            raise PermanentError(Dropped(state.error))
        state.error = (f"retriable error returned from app while processing pub/sub event {event_id}, "
                       f"topic: {event.get('topic')}, body: {body}. status code returned: {resp.status_code}")
        log.warning(state.error)
        raise StatusError(resp.status_code, state.error)

    # ---- giving up ----------------------------------------------------------------------------
    def _fail(self, record: Record, sub: Subscription, metadata: dict[str, str], outcome: Outcome) -> bool:
        """A message that can never be delivered: dead-letter it, or retry forever without a DLQ."""
        if sub.dead_letter_topic:
            return self.dead_letter(record, sub, metadata, outcome)
        while not self.stop.wait(self.settings.consume_retry_s):
            pass  # daprd keeps returning the error; the partition is stuck until restart, as there
        return False

    def dead_letter_if_any(self, record: Record, sub: Subscription, metadata: dict[str, str],
                            outcome: Outcome) -> bool:
        if sub.dead_letter_topic:
            return self.dead_letter(record, sub, metadata, outcome)
        return True

    def dead_letter(self, record: Record, sub: Subscription, metadata: dict[str, str],
                     outcome: Outcome) -> bool:
        """Publish the original bytes to the dead-letter topic, with where-from and why headers."""
        md = dict(metadata)
        md.update({
            "x-dlq-original-topic": record.topic,
            "x-dlq-original-partition": str(record.partition),
            "x-dlq-original-offset": str(record.offset),
            "x-dlq-subscription": sub.name,
            "x-dlq-app-id": self.app_id,
            "x-dlq-consumer-group": self.settings.consumer_group,
            "x-dlq-reason": outcome.result,
            "x-dlq-attempts": str(outcome.attempts),
            "x-dlq-error": outcome.error[:1000],
            "x-dlq-time": str(int(time.time() * 1000)),
        })
        if outcome.status is not None:
            md["x-dlq-status"] = str(outcome.status)
        delay = 0.1
        while not self.stop.is_set():
            if not self.settings.scopes.may_publish(sub.dead_letter_topic):
                # daprd publishes dead letters as the app, so publishingScopes apply; it then keeps
                # failing and the component keeps redelivering, as here
                log.error("error sending message to dead letter: topic not allowed for this app", extra={
                    "topic": record.topic, "dead_letter_topic": sub.dead_letter_topic})
                self.stop.wait(max(delay, self.settings.consume_retry_s))
                delay = min(delay * 2, 2.0)
                continue
            try:
                self.producer.send(sub.dead_letter_topic, record.value or b"", md, None)
                log.warning("message sent to dead letter topic", extra={
                    "topic": record.topic, "partition": record.partition, "offset": record.offset,
                    "dead_letter_topic": sub.dead_letter_topic, "reason": outcome.result,
                    "attempts": outcome.attempts, "status": outcome.status,
                })
                return True
            except PublishError as exc:
                log.error("error sending message to dead letter", extra={
                    "topic": record.topic, "dead_letter_topic": sub.dead_letter_topic, "error": str(exc)})
                self.stop.wait(delay)
                delay = min(delay * 2, 2.0)
        return False
