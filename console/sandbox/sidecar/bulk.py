"""Bulk subscribe: deliver a batch of one partition's messages to the app in one HTTP request.

Modelled on dapr/dapr pkg/runtime/subscription (bulksubscription.go, bulkresiliency.go and the
DeliverBulk half of postman/http/http.go) over the Kafka component's bulk consumer
(components-contrib common/component/kafka/consumer.go):
- entries are numbered "0", "1", ... in batch order (Kafka's entryId) and go in one POST to the
  subscription's route with daprd's envelope {id, type "com.dapr.event.sent.bulk", topic,
  pubsubname, metadata {pubsubName}, entries [{entryId, event, metadata, contentType}]} (daprd
  groups entries per matched route rule; the sidecar has one route per subscription);
- the app answers {"statuses": [{"entryId", "status"}]}: SUCCESS acks, DROP acks (dead-lettered
  when the subscription has a deadLetterTopic), RETRY, "" , an unknown status or a missing entry
  fail that entry; a non-2xx answer, no answer or an undecodable body fail every entry; 404 acks
  them all (not dead-lettered: daprd bulk answers nil there, unlike single delivery);
- the inbound resiliency policy retries, re-sending only the entries still failing
  (bulkresiliency.go's accumulator); once it gives up, failed entries go to the dead-letter topic;
  without one the handler returns an error and the Kafka component redelivers the whole batch,
  acknowledged entries included, every consumeRetryInterval, forever;
- expired events are dead-lettered if possible and acked; an entry that is not a JSON object
  fails (dead-lettered, or the batch is retried forever).
Dead letters carry the same headers as single delivery (Subscriber.dead_letter).
Docs: https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-bulk/
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from console.sandbox.sidecar import cloudevents
from console.sandbox.sidecar.loopback import AppUnreachable
from console.sandbox.sidecar.records import Record
from console.sandbox.sidecar.subscriber import DEFAULT_DELIVERY_TIMEOUT_S, Outcome, record_metadata

if TYPE_CHECKING:
    from console.sandbox.sidecar.resources import Subscription
    from console.sandbox.sidecar.subscriber import Subscriber

log = logging.getLogger(__name__)

BULK_EVENT_TYPE = "com.dapr.event.sent.bulk"  # components-contrib pubsub DefaultBulkEventType
RAW_CONTENT_TYPE = "application/octet-stream"


class _Interrupted(Exception):
    """Shutdown stopped the batch half-way: none of it is committed."""


@dataclass
class _Entry:
    """One message of the batch and how its delivery is going."""

    entry_id: str
    record: Record
    metadata: dict[str, str]  # the message metadata + pubsubName: what dead letters carry
    item: dict[str, Any] = field(default_factory=dict)  # the envelope entry
    trace: str = ""
    attempts: int = 0
    status: int | None = None
    error: str = ""  # why it failed; "" while pending or once settled
    settled: bool = False  # acked, dropped or dead-lettered

    def fail(self, error: str) -> None:
        self.error, self.settled = error, False

    def settle(self) -> None:
        self.error, self.settled = "", True

    @property
    def failed(self) -> bool:
        return not self.settled


def parse_statuses(body: bytes) -> dict[str, str]:
    """entryId -> status from the app's answer, read as Go's json.Decoder into AppBulkResponse.

    Keys match case-insensitively, `null`s are zero values; an empty body, invalid JSON or a
    value of the wrong type is an error (ValueError, TypeError), which daprd treats as every entry failing.
    """
    text = body.decode(errors="replace").lstrip()
    answer, _ = json.JSONDecoder().raw_decode(text)  # like Decode: trailing bytes are not read
    if answer is None:
        return {}
    if not isinstance(answer, dict):
        raise TypeError("json: cannot unmarshal into Go value of type pubsub.AppBulkResponse")
    items = _field(answer, "statuses")
    if items is None:
        return {}
    if not isinstance(items, list):
        raise TypeError("json: cannot unmarshal statuses into []pubsub.AppBulkResponseEntry")
    out: dict[str, str] = {}
    for item in items:
        if item is None:
            continue
        if not isinstance(item, dict):
            raise TypeError("json: cannot unmarshal a status into pubsub.AppBulkResponseEntry")
        entry_id, status = _field(item, "entryid"), _field(item, "status")
        if not isinstance(entry_id, str | None) or not isinstance(status, str | None):
            raise TypeError("json: cannot unmarshal a status entry into pubsub.AppBulkResponseEntry")
        out[entry_id or ""] = status or ""
    return out


def _field(obj: dict[str, Any], name: str) -> Any:
    """encoding/json's field lookup: the exact key first, else a case-insensitive match."""
    for key, value in obj.items():
        if key == name or key.lower() == name:
            return value
    return None


@dataclass
class BulkDelivery:
    """The subscriber's batch handler for subscriptions with bulkSubscribe.enabled."""

    subscriber: Subscriber

    def deliver(self, records: list[Record]) -> bool:
        """Settle every record of the batch; False if shutdown interrupted it (nothing committed)."""
        s = self.subscriber
        sub = s.by_topic.get(records[0].topic)
        if sub is None:
            return True
        try:
            while not s.stop.is_set():
                failed = [e for e in self._round(sub, records) if e.failed]
                if not failed:
                    return True
                if sub.dead_letter_topic:
                    for entry in failed:
                        outcome = Outcome("failed", entry.attempts, entry.status, entry.error)
                        if not s.dead_letter(entry.record, sub, entry.metadata, outcome):
                            return False
                    return True
                # no dead-letter topic: the Kafka component retries the whole batch, forever
                log.warning("bulk delivery failed; the component retries the batch", extra={
                    "topic": sub.topic, "entries": len(records), "failed": len(failed), "error": failed[0].error})
                s.stop.wait(s.settings.consume_retry_s)
        except _Interrupted:
            pass
        return False

    # ---- one handler call (what daprd's bulkHandler does per BulkMessage) ----------------------
    def _round(self, sub: Subscription, records: list[Record]) -> list[_Entry]:
        entries = [_Entry(str(i), r, record_metadata(r, self.subscriber.pubsub)) for i, r in enumerate(records)]
        ready = [entry for entry in entries if self._prepare(sub, entry)]
        if ready:
            channel = self.subscriber.channel
            if not channel.ready.is_set() and not channel.wait_for_app():
                raise _Interrupted
            self._send(sub, sub.default_route, ready)
        return entries

    def _prepare(self, sub: Subscription, entry: _Entry) -> bool:
        """Build the envelope entry; False if it is settled or failed already."""
        record, pubsub = entry.record, self.subscriber.pubsub
        data = record.value or b""
        item_md = {k: v for k, v in entry.metadata.items() if k != "pubsubName"}  # the component's only
        if str(sub.metadata.get("rawPayload", "false")).lower() == "true":
            entry.item = {"entryId": entry.entry_id, "event": base64.b64encode(data).decode(),
                          "metadata": item_md, "contentType": RAW_CONTENT_TYPE}
            entry.trace = entry.metadata.get("traceparent") or entry.metadata.get("traceid") or ""
            return True
        try:
            event = json.loads(data)
            if not isinstance(event, dict):
                raise TypeError("cloud event is not a JSON object")
        except (ValueError, TypeError) as exc:
            log.error("error deserializing one of the messages in bulk cloud event in pubsub %s and topic %s: %s",
                      pubsub, sub.topic, exc)
            entry.fail(f"error deserializing cloud event: {exc}")
            return False
        if cloudevents.has_expired(event):
            log.warning("dropping expired pub/sub event %s as of %s", event.get("id"), event.get("expiration"))
            self._drop(sub, entry, "expired")
            return False
        entry.item = {"entryId": entry.entry_id, "event": event, "metadata": item_md,
                      "contentType": cloudevents.CLOUDEVENT_CONTENT_TYPE}
        trace = event.get("traceparent") or event.get("traceid")
        entry.trace = trace if isinstance(trace, str) else ""
        return True

    def _drop(self, sub: Subscription, entry: _Entry, why: str) -> None:
        """Ack an entry the app will not see (or asked to drop), dead-lettering it when possible."""
        outcome = Outcome("dropped", entry.attempts, entry.status, why)
        if not self.subscriber.dead_letter_if_any(entry.record, sub, entry.metadata, outcome):
            raise _Interrupted
        entry.settle()

    # ---- delivery to one route under the inbound policy ----------------------------------------
    def _send(self, sub: Subscription, path: str, group: list[_Entry]) -> None:
        """POST the route's entries; retries re-send only the entries still failing."""
        s = self.subscriber
        envelope_id = str(uuid.uuid4())  # one envelope, cloned for each retry

        def attempt(timeout: float | None) -> None:
            self._post(sub, path, envelope_id, [e for e in group if e.failed], timeout)

        try:
            s.policy.run(attempt, stop=s.stop)
        except _Interrupted:
            raise
        except Exception as exc:
            for entry in group:
                if entry.failed and not entry.error:  # not attempted (an open circuit breaker)
                    entry.error = str(exc)
            log.debug("bulk delivery gave up", extra={"topic": sub.topic, "path": path, "error": str(exc)})
        if s.stop.is_set():
            raise _Interrupted

    def _post(self, sub: Subscription, path: str, envelope_id: str, pending: list[_Entry],
              timeout: float | None) -> None:
        """One attempt, judged as postman/http DeliverBulk does; raises if any entry still fails."""
        pubsub = self.subscriber.pubsub
        envelope = {"id": envelope_id, "type": BULK_EVENT_TYPE, "topic": sub.topic, "pubsubname": pubsub,
                    "metadata": {"pubsubName": pubsub}, "entries": [e.item for e in pending]}
        # daprd sends the bulk message's metadata ({pubsubName}) as headers, not the entries'
        headers = {"content-type": "application/json", "pubsubName": pubsub}
        trace = next((e.trace for e in reversed(pending) if e.trace), "")
        if trace:
            headers["traceparent"] = cloudevents.child_traceparent(trace)
        for entry in pending:
            entry.attempts += 1
        try:
            resp = self.subscriber.channel.request(
                "POST", "/" + path.lstrip("/"), body=json.dumps(envelope).encode(), headers=headers.items(),
                timeout_s=timeout or DEFAULT_DELIVERY_TIMEOUT_S)
        except AppUnreachable as exc:
            raise self._fail_all(
                pending, None, f"error from app channel while sending pub/sub event to app: {exc}") from exc
        for entry in pending:
            entry.status = resp.status_code
        if 200 <= resp.status_code <= 299:
            self._judge(sub, pending, resp.content)
            return
        if resp.status_code == 404:
            log.error("Non-retriable error returned from app while processing bulk pub/sub event. "
                      "status code returned: 404")
            for entry in pending:
                entry.settle()
            return
        error = (f"Retriable error returned from app while processing bulk pub/sub event, topic: {sub.topic}. "
                 f"status code returned: {resp.status_code}")
        log.warning(error)
        raise self._fail_all(pending, resp.status_code, f"{error}, body: {resp.content.decode(errors='replace')}")

    @staticmethod
    def _fail_all(pending: list[_Entry], status: int | None, error: str) -> RuntimeError:
        """Every entry of the request failed; the error to raise so the policy retries them."""
        for entry in pending:
            entry.status = status
            entry.fail(error)
        return RuntimeError(error)

    def _judge(self, sub: Subscription, pending: list[_Entry], body: bytes) -> None:
        """Apply the app's per-entry statuses (2xx answer)."""
        try:
            statuses = parse_statuses(body)
        except (ValueError, TypeError) as exc:
            raise self._fail_all(
                pending, pending[0].status, f"failed unmarshalling app response for bulk subscribe: {exc}") from exc
        sent = {e.entry_id for e in pending}
        for entry_id in statuses.keys() - sent:
            log.warning("Invalid entry id received from app while processing pub/sub event %s", entry_id)
        for entry in pending:
            self._apply(sub, entry, statuses.get(entry.entry_id))
        if any(e.failed for e in pending):
            raise RuntimeError("few message(s) have failed during bulk subscribe operation")

    def _apply(self, sub: Subscription, entry: _Entry, status: str | None) -> None:
        eid = entry.entry_id
        if status is None:
            entry.fail(f"response not received, RETRY required while processing bulk subscribe event for entry id: {eid}")
        elif status == "SUCCESS":
            entry.settle()
        elif status == "DROP":
            log.warning("DROP status returned from app while processing pub/sub event %s", eid)
            self._drop(sub, entry, "DROP status returned from app")
        elif status in ("RETRY", ""):  # daprd: an empty status on a 2xx answer is a retry, too
            entry.fail(f"RETRY required while processing bulk subscribe event for entry id: {eid}")
        else:
            entry.fail(f"unknown status returned from app while processing bulk subscribe event {eid}: {status}")
