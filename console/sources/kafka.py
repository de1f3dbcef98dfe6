"""Kafka, spoken through kafka-python-ng: the console's only module that imports a Kafka client.

Everything an operator asks of Kafka goes through `KafkaSource`: consumer groups and their committed
offsets, partition offsets, the timestamp of the record at a committed offset, reading a topic, producing
(redrive), committing offsets (marking dead letters handled) and DeleteRecords.

Batched, never one request per partition: Metadata, ListOffsets and Fetch go once per partition leader
for all its partitions; groups go to their coordinators many at a time (FindCoordinator v4 and OffsetFetch
v8 carry many groups in one request, KIP-699/KIP-709, Kafka 3.0+; older brokers get one request per
group, still never per partition); DescribeGroups takes every group of a coordinator at once.

End offsets come from the Fetch response's high watermark, because tansu (the sandbox broker) answers
ListOffsets(latest) with its last batch's base offset + 1, short of the end whenever that batch held
several records. Asking ListOffsets(latest) first and then fetching at that offset - 1 is right on both:
on Kafka the fetch reads the last record, on tansu the last batch; both answer with the true high
watermark and the log start offset. (Fetching at the guessed end itself would not do: tansu leaves out
partitions with nothing to return, and ignores a fetch with max_wait 0 altogether.)

One `KafkaSource` is used by one thread at a time (the dashboard runs one worker per source).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.client_async import KafkaClient
from kafka.errors import KafkaConnectionError, KafkaError, for_code
from kafka.protocol.admin import DescribeGroupsRequest, ListGroupsRequest
from kafka.protocol.api import Request, Response
from kafka.protocol.commit import GroupCoordinatorRequest, OffsetCommitRequest, OffsetFetchRequest
from kafka.protocol.fetch import FetchRequest
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.offset import OffsetRequest
from kafka.protocol.types import (
    Array,
    Boolean,
    CompactArray,
    CompactString,
    Int8,
    Int16,
    Int32,
    Int64,
    Schema,
    String,
    TaggedFields,
)
from kafka.record import MemoryRecords

from console.model.kafka import (
    DeleteOutcome,
    GroupOffsets,
    KafkaRecord,
    LagSnapshot,
    OutgoingRecord,
    PartitionOffsets,
    Produced,
    TopicPartition,
)
from console.sources.health import SourceError
from console.target import ClusterTarget, SandboxTarget, Target

log = logging.getLogger(__name__)

CLIENT_ID = "todo-console"
CONSOLE_GROUP_PREFIX = "todo-console"  # the console's own groups (dead letters marked handled) are not "consumers"
LATEST, EARLIEST = -1, -2  # ListOffsets' special timestamps
RECORD_BYTES = 1 << 20  # per partition per fetch: a whole batch of the default 1 MiB message.max.bytes
FETCH_BYTES = 64 << 20
FETCH_WAIT_MS = 500
FETCH_ROUNDS = 5  # partitions a broker left out of this many fetches in a row: timestamps fall back to interpolation
STAMP_CACHE = 50_000  # (partition, offset) -> record timestamp; records never change once written
_NO_ERROR, _OFFSET_OUT_OF_RANGE = 0, 1
_COORDINATOR_MOVED = frozenset({14, 15, 16})  # load in progress, not available, not coordinator


# --- the flexible request versions kafka-python-ng does not define ------------------------------------
# Field layouts from Kafka's clients/src/main/resources/common/message/*.json.
class _FindCoordinatorResponseV4(Response):
    API_KEY, API_VERSION = 10, 4
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("coordinators", CompactArray(
            ("key", CompactString("utf-8")), ("node_id", Int32), ("host", CompactString("utf-8")),
            ("port", Int32), ("error_code", Int16), ("error_message", CompactString("utf-8")),
            ("tags", TaggedFields))),
        ("tags", TaggedFields))


class _FindCoordinatorRequestV4(Request):
    API_KEY, API_VERSION, FLEXIBLE_VERSION = 10, 4, True
    RESPONSE_TYPE = _FindCoordinatorResponseV4
    SCHEMA = Schema(("key_type", Int8), ("coordinator_keys", CompactArray(CompactString("utf-8"))),
                    ("tags", TaggedFields))


class _OffsetFetchResponseV8(Response):
    API_KEY, API_VERSION = 9, 8
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("groups", CompactArray(
            ("group_id", CompactString("utf-8")),
            ("topics", CompactArray(
                ("name", CompactString("utf-8")),
                ("partitions", CompactArray(
                    ("partition_index", Int32), ("committed_offset", Int64), ("committed_leader_epoch", Int32),
                    ("metadata", CompactString("utf-8")), ("error_code", Int16), ("tags", TaggedFields))),
                ("tags", TaggedFields))),
            ("error_code", Int16), ("tags", TaggedFields))),
        ("tags", TaggedFields))


class _OffsetFetchRequestV8(Request):
    API_KEY, API_VERSION, FLEXIBLE_VERSION = 9, 8, True
    RESPONSE_TYPE = _OffsetFetchResponseV8
    SCHEMA = Schema(
        ("groups", CompactArray(
            ("group_id", CompactString("utf-8")),
            ("topics", CompactArray(
                ("name", CompactString("utf-8")), ("partition_indexes", CompactArray(Int32)), ("tags", TaggedFields))),
            ("tags", TaggedFields))),
        ("require_stable", Boolean), ("tags", TaggedFields))


class _DeleteRecordsResponseV1(Response):
    API_KEY, API_VERSION = 21, 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", Array(("name", String("utf-8")),
                         ("partitions", Array(("partition_index", Int32), ("low_watermark", Int64),
                                              ("error_code", Int16))))))


class _DeleteRecordsRequestV1(Request):
    API_KEY, API_VERSION = 21, 1
    RESPONSE_TYPE = _DeleteRecordsResponseV1
    SCHEMA = Schema(("topics", Array(("name", String("utf-8")),
                                     ("partitions", Array(("partition_index", Int32), ("offset", Int64))))),
                    ("timeout_ms", Int32))


def _error_name(code: int) -> str:
    return str(for_code(code).__name__)


# --- answers decoded once -------------------------------------------------------------------------------
# kafka-python-ng decodes a response field by field in Python: the offsets of 54 groups on 300 partitions
# are 30,000 fields, about half the CPU of a lag refresh. The dashboard asks the same questions every 2 s,
# and on a quiet cluster the brokers answer with the same bytes; a request type made by `_decoded_once`
# hands back the previous answer for a byte-identical body instead of decoding it again (the answers are
# read, never changed). A body that differs by one byte is decoded in full, so nothing stale is served.
_KEPT_ANSWERS = 4  # per response type: one per broker of a small cluster, or per caller (lag, dead letters)
_KEPT_BYTES = 1 << 20  # record fetches (up to 1 MiB per partition) are decoded every time, never kept


@functools.cache
def _decoded_once(request_type: type[Request]) -> type[Request]:
    response_type: type[Response] = request_type.RESPONSE_TYPE
    kept: OrderedDict[bytes, Response] = OrderedDict()
    lock = threading.Lock()

    def decode(cls: type[Response], data: Any) -> Response:
        body = bytes(data) if isinstance(data, bytes) else data.read()
        with lock:
            answer = kept.get(body)
            if answer is not None:
                kept.move_to_end(body)
                return answer
        answer = response_type.decode(body)
        if len(body) <= _KEPT_BYTES:
            with lock:
                kept[body] = answer
                while len(kept) > _KEPT_ANSWERS:
                    kept.popitem(last=False)
        return answer

    once = type(response_type.__name__, (response_type,), {"decode": classmethod(decode)})
    return type(request_type.__name__, (request_type,), {"RESPONSE_TYPE": once})


class KafkaSource:
    """The Kafka cluster at `bootstrap`; every failure is a `SourceError` naming it."""

    source = "kafka"

    def __init__(self, bootstrap: str, *, timeout_s: float = 10.0, client_id: str = CLIENT_ID) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.client_id = client_id
        self._client: KafkaClient | None = None
        self._producer: KafkaProducer | None = None
        self._versions: dict[int, tuple[int, int]] = {}
        self._brokers: list[int] = []
        self._leaders: dict[TopicPartition, int] = {}
        self._partition_counts: dict[str, int] = {}
        self._coordinators: dict[str, int] = {}
        self._stamps: OrderedDict[tuple[TopicPartition, int], float | None] = OrderedDict()
        # What the last reads took out of an answer decoded once (`_decoded_once`): the same answer object
        # gives the same values, so the next read copies them instead of walking 1,500 partitions again
        # (a group's committed offsets, keyed on the group; a Fetch's offsets, keyed on the answer's identity)
        self._committed_read: dict[str, tuple[object, dict[TopicPartition, int]]] = {}
        self._offsets_read: dict[int, tuple[object, dict[TopicPartition, tuple[int, int, int, list[KafkaRecord]]]]] = {}

    def __enter__(self) -> KafkaSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=self.timeout_s)
            self._producer = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _error(self, reason: str) -> SourceError:
        return SourceError(self.source, self.bootstrap, reason)

    # --- the wire ---------------------------------------------------------------------------------------

    def _connect(self) -> KafkaClient:
        if self._client is None:
            try:
                client = KafkaClient(
                    bootstrap_servers=self.bootstrap, client_id=self.client_id,
                    request_timeout_ms=int(self.timeout_s * 1000), reconnect_backoff_max_ms=1000,
                    max_in_flight_requests_per_connection=32,
                    api_version_auto_timeout_ms=int(self.timeout_s * 1000))
                client.check_version(timeout=self.timeout_s)
            except (KafkaError, OSError, ValueError, AssertionError) as exc:
                raise self._error(f"no broker answers ({type(exc).__name__}: {exc})") from exc
            self._versions = dict(client.get_api_versions() or {})
            self._client = client
        return self._client

    def _version(self, api_key: int, newest_known: int, oldest_usable: int = 0) -> int | None:
        """The newest version of `api_key` both we and the broker speak, or None."""
        self._connect()
        offered = self._versions.get(api_key)
        if offered is None:
            return None
        version = min(offered[1], newest_known)
        return version if version >= max(offered[0], oldest_usable) else None

    def _call(self, calls: Sequence[tuple[int | str, Request]]) -> list[Any]:
        """Send every (node, request) at once (pipelined per connection) and wait for all answers."""
        client = self._connect()
        futures: list[Any] = [None] * len(calls)
        deadline = time.monotonic() + self.timeout_s
        while True:
            for i, (node, request) in enumerate(calls):
                if futures[i] is None and client.ready(node, metadata_priority=False):
                    futures[i] = client.send(node, request)
            if all(f is not None and f.is_done for f in futures):
                break
            if time.monotonic() > deadline:
                raise self._error(f"no answer within {self.timeout_s:g}s")
            client.poll(timeout_ms=50)
        failed = [f.exception for f in futures if f.failed()]
        if failed:
            if isinstance(failed[0], KafkaConnectionError):
                raise failed[0]
            raise self._error(f"request failed: {failed[0]}")
        return [f.value for f in futures]

    def _any_node(self) -> int | str:
        node = self._connect().least_loaded_node()
        if node is None:
            raise self._error("no broker is reachable")
        return node

    # --- topics -------------------------------------------------------------------------------------------

    def topics(self, names: Collection[str] | None = None) -> dict[str, int]:
        """Partition count per existing topic (all topics, or those of `names` that exist). Never creates one."""
        version = self._version(MetadataRequest[0].API_KEY, 4, 4)  # kafka-python-ng parses up to v4
        if version is None:
            raise self._error("the broker offers no Metadata v4+ (needed to look without creating topics)")
        request = _decoded_once(MetadataRequest[version])(None if names is None else sorted(names), False)
        (response,) = self._call_connected([(self._any_node(), request)])
        self._connect().cluster.update_metadata(response)
        self._brokers = sorted(node_id for node_id, *_ in response.brokers)
        counts: dict[str, int] = {}
        for error_code, topic, _internal, partitions in response.topics:
            if error_code != _NO_ERROR:
                continue
            counts[topic] = len(partitions)
            self._partition_counts[topic] = len(partitions)
            for _perr, partition, leader, *_ in partitions:
                self._leaders[TopicPartition(topic, partition)] = leader
        return counts

    def _call_connected(self, calls: Sequence[tuple[int | str, Request]]) -> list[Any]:
        try:
            return self._call(calls)
        except KafkaConnectionError as exc:
            self._coordinators.clear()  # a broker that went away may come back elsewhere: ask again next time
            raise self._error(f"connection lost: {exc}") from exc

    def _by_leader(self, tps: Iterable[TopicPartition]) -> dict[int, list[TopicPartition]]:
        tps = sorted(set(tps))
        unknown = {tp.topic for tp in tps if tp not in self._leaders}
        if unknown:
            self.topics(unknown | set(self._partition_counts))
        grouped: dict[int, list[TopicPartition]] = {}
        for tp in tps:
            leader = self._leaders.get(tp)
            if leader is None or leader < 0:
                raise self._error(f"{tp} has no leader (does the topic exist?)")
            grouped.setdefault(leader, []).append(tp)
        return grouped

    # --- consumer groups -----------------------------------------------------------------------------------

    def list_groups(self, include_console: bool = False) -> list[str]:
        """Every consumer group any broker knows (ListGroups goes to each broker once)."""
        if not self._brokers:
            self.topics(())
        version = self._version(ListGroupsRequest[0].API_KEY, 2)
        if version is None:
            raise self._error("the broker offers no ListGroups")
        names: set[str] = set()
        for response in self._call_connected([(node, _decoded_once(ListGroupsRequest[version])()) for node in self._brokers]):
            if response.error_code != _NO_ERROR:
                raise self._error(f"ListGroups: {_error_name(response.error_code)}")
            names.update(group for group, _protocol in response.groups)
        return sorted(n for n in names if include_console or not n.startswith(CONSOLE_GROUP_PREFIX))

    def _find_coordinators(self, groups: Collection[str], refresh: bool = False) -> dict[str, int]:
        wanted = sorted(g for g in groups if refresh or g not in self._coordinators)
        if wanted:
            if not self._brokers:
                self.topics(())
            if self._version(10, 4, 4) is not None:
                (response,) = self._call_connected([(self._any_node(), _FindCoordinatorRequestV4(0, wanted, {}))])
                answers = [(key, node, err) for key, node, _h, _p, err, _m, _t in response.coordinators]
            else:
                version = self._version(10, 1) or 0
                requests = [(self._any_node(), GroupCoordinatorRequest[version](*([g, 0] if version else [g])))
                            for g in wanted]
                answers = [(g, r.coordinator_id, r.error_code)
                           for g, r in zip(wanted, self._call_connected(requests), strict=True)]
            for group, node, error_code in answers:
                if error_code != _NO_ERROR:
                    raise self._error(f"no coordinator for group {group}: {_error_name(error_code)}")
                self._coordinators[group] = node
        return {g: self._coordinators[g] for g in groups}

    def _per_coordinator(self, groups: Collection[str], refresh: bool = False) -> dict[int, list[str]]:
        by_node: dict[int, list[str]] = {}
        for group, node in self._find_coordinators(groups, refresh).items():
            by_node.setdefault(node, []).append(group)
        return by_node

    def describe_groups(self, groups: Collection[str]) -> dict[str, tuple[str | None, int | None]]:
        """(state, member count) per group: one DescribeGroups per coordinator."""
        if not groups:
            return {}
        version = self._version(DescribeGroupsRequest[0].API_KEY, 1)
        if version is None:
            return dict.fromkeys(groups, (None, None))
        by_node = self._per_coordinator(groups)
        calls = [(node, _decoded_once(DescribeGroupsRequest[version])(names)) for node, names in by_node.items()]
        found: dict[str, tuple[str | None, int | None]] = {}
        for response in self._call_connected(calls):
            for error_code, group, state, _ptype, _protocol, members in response.groups:
                found[group] = (state, len(members)) if error_code == _NO_ERROR else (None, None)
        return {g: found.get(g, (None, None)) for g in groups}

    def committed_offsets(self, groups: Collection[str]) -> dict[str, tuple[dict[TopicPartition, int], str | None]]:
        """Per group: its committed offsets (partitions without a commit are absent) and its error, if any."""
        if not groups:
            return {}
        result: dict[str, tuple[dict[TopicPartition, int], str | None]] = {}
        pending = set(groups)
        for attempt in range(2):
            by_node = self._per_coordinator(pending, refresh=attempt > 0)
            moved: set[str] = set()
            for group, offsets, error_code in self._offset_fetch(by_node):
                if error_code in _COORDINATOR_MOVED and attempt == 0:
                    moved.add(group)
                    continue
                result[group] = (offsets, None if error_code == _NO_ERROR else _error_name(error_code))
            pending = moved
            if not pending:
                break
        return result

    def _offset_fetch(self, by_node: Mapping[int, list[str]]) -> list[tuple[str, dict[TopicPartition, int], int]]:
        answers: list[tuple[str, dict[TopicPartition, int], int]] = []
        if self._version(9, 8, 8) is not None:
            calls = [(node, _decoded_once(_OffsetFetchRequestV8)([(g, None, {}) for g in names], False, {}))
                     for node, names in by_node.items()]
            read: dict[str, tuple[object, dict[TopicPartition, int]]] = {}
            for response in self._call_connected(calls):
                for group, topics, error_code, _tags in response.groups:
                    known = self._committed_read.get(group)
                    if known is not None and known[0] is topics:
                        offsets = dict(known[1])
                    else:
                        offsets = {TopicPartition(topic, p): off
                                   for topic, parts, _t in topics or [] for p, off, _e, _m, perr, _pt in parts
                                   if off >= 0 and perr == _NO_ERROR}
                    read[group] = (topics, dict(offsets))
                    answers.append((group, offsets, error_code))
            self._committed_read = read
            return answers
        version = self._version(9, 3, 2)
        if version is None:
            raise self._error("the broker offers no OffsetFetch v2+")
        calls = [(node, OffsetFetchRequest[version](g, None)) for node, names in by_node.items() for g in names]
        groups = [g for names in by_node.values() for g in names]
        for group, response in zip(groups, self._call_connected(calls), strict=True):
            offsets = {TopicPartition(topic, p): off for topic, parts in response.topics
                       for p, off, _m, perr in parts if off >= 0 and perr == _NO_ERROR}
            answers.append((group, offsets, response.error_code))
        return answers

    def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit `offsets` for `group` as a consumer outside any generation (how a group without members
        is moved, like `kafka-consumer-groups --reset-offsets`)."""
        version = self._version(OffsetCommitRequest[0].API_KEY, 3, 2)
        if version is None:
            raise self._error("the broker offers no OffsetCommit v2+")
        topics: dict[str, list[tuple[int, int, str]]] = {}
        for tp, offset in sorted(offsets.items()):
            topics.setdefault(tp.topic, []).append((tp.partition, offset, ""))
        for attempt in range(2):
            node = self._find_coordinators([group], refresh=attempt > 0)[group]
            (response,) = self._call_connected([(node, OffsetCommitRequest[version](
                group, -1, "", -1, list(topics.items())))])
            errors = {err for _t, parts in response.topics for _p, err in parts if err != _NO_ERROR}
            if errors & _COORDINATOR_MOVED and attempt == 0:
                continue
            if errors:
                raise self._error(f"committing for group {group}: {', '.join(map(_error_name, sorted(errors)))}")
            return

    # --- partitions and records ------------------------------------------------------------------------

    def _list_offsets(self, tps: Collection[TopicPartition], timestamp: int) -> dict[TopicPartition, int]:
        # v3 at most: kafka-python-ng encodes v4's current_leader_epoch as an Int64 (it is an Int32).
        version = self._version(OffsetRequest[0].API_KEY, 3, 1)
        if version is None:
            raise self._error("the broker offers no ListOffsets v1+")
        calls = []
        for leader, parts in self._by_leader(tps).items():
            topics: dict[str, list[tuple[int, int]]] = {}
            for tp in parts:
                topics.setdefault(tp.topic, []).append((tp.partition, timestamp))
            args: list[Any] = [-1] + ([0] if version >= 2 else []) + [list(topics.items())]
            calls.append((leader, _decoded_once(OffsetRequest[version])(*args)))
        found: dict[TopicPartition, int] = {}
        for response in self._call_connected(calls):
            for topic, parts in response.topics:
                for partition, error_code, _ts, offset, *_ in parts:
                    if error_code != _NO_ERROR:
                        raise self._error(f"ListOffsets {topic}[{partition}]: {_error_name(error_code)}")
                    found[TopicPartition(topic, partition)] = offset
        return found

    def _fetch(self, positions: Mapping[TopicPartition, int], partition_bytes: int, *, parse: bool = True
               ) -> dict[TopicPartition, tuple[int, int, int, list[KafkaRecord]]]:
        """One Fetch per leader: per partition (error code, high watermark, log start, records >= position).

        min_bytes 1 with a max_wait of FETCH_WAIT_MS: Kafka answers as soon as any partition has data; tansu
        reads partitions until the wait runs out (with max_wait 0 it answers with no partitions at all, with
        1 ms only a few of a hundred), and answers at once when done. Positions are readable offsets, so the
        wait is only ever spent when a partition was emptied meanwhile.
        """
        version = self._version(FetchRequest[0].API_KEY, 11, 4)
        if version is None:
            raise self._error("the broker offers no Fetch v4+")
        calls = []
        for leader, parts in self._by_leader(positions).items():
            topics: dict[str, list[tuple[Any, ...]]] = {}
            for tp in parts:
                offset = positions[tp]
                if version >= 9:
                    entry: tuple[Any, ...] = (tp.partition, -1, offset, -1, partition_bytes)
                elif version >= 5:
                    entry = (tp.partition, offset, -1, partition_bytes)
                else:
                    entry = (tp.partition, offset, partition_bytes)
                topics.setdefault(tp.topic, []).append(entry)
            head: list[Any] = [-1, FETCH_WAIT_MS, 1, FETCH_BYTES, 0]  # replica, max wait, min/max bytes, isolation
            tail: list[Any] = []
            if version >= 7:
                head += [0, -1]  # no fetch session
                tail = [[]]  # forgotten topics
            if version >= 11:
                tail.append("")  # rack
            request_type = _decoded_once(FetchRequest[version]) if not parse else FetchRequest[version]
            calls.append((leader, request_type(*head, list(topics.items()), *tail)))
        found: dict[TopicPartition, tuple[int, int, int, list[KafkaRecord]]] = {}
        read: dict[int, tuple[object, dict[TopicPartition, tuple[int, int, int, list[KafkaRecord]]]]] = {}
        for response in self._call_connected(calls):
            known = self._offsets_read.get(id(response)) if not parse else None
            if known is not None and known[0] is response:  # offsets only, from the same answer: the same values
                answer = known[1]
            else:
                answer = {}
                for topic, parts in response.topics:
                    for part in parts:
                        partition, error_code, high_watermark = part[0], part[1], part[2]
                        log_start = part[4] if version >= 5 else -1
                        tp = TopicPartition(topic, partition)
                        records = _parse(tp, part[-1], positions.get(tp, 0)) if parse else []
                        answer[tp] = (error_code, high_watermark, log_start, records)
            if not parse:
                read[id(response)] = (response, answer)
            found.update(answer)
        if not parse:
            self._offsets_read = read
        return found

    def partition_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, PartitionOffsets]:
        """Log start and end (high watermark) of each partition: ListOffsets(latest), then Fetch at that - 1."""
        tps = sorted(set(tps))
        if not tps:
            return {}
        latest = self._list_offsets(tps, LATEST)
        positions = {tp: off - 1 for tp, off in latest.items() if off > 0}
        fetched: dict[TopicPartition, tuple[int, int, int, list[KafkaRecord]]] = {}
        for _round in range(FETCH_ROUNDS):
            missing = {tp: off for tp, off in positions.items() if tp not in fetched}
            if not missing:
                break
            fetched.update(self._fetch(missing, 1, parse=False))  # only the offsets are wanted
        result: dict[TopicPartition, PartitionOffsets] = {}
        unsure: list[TopicPartition] = []
        for tp in tps:
            error_code, high_watermark, log_start, _ = fetched.get(tp, (-1, -1, -1, []))
            if latest[tp] == 0:
                result[tp] = PartitionOffsets(0, 0)
            elif error_code == _NO_ERROR and high_watermark >= 0 and log_start >= 0:
                result[tp] = PartitionOffsets(log_start, high_watermark)
            elif error_code == _NO_ERROR and high_watermark >= 0:
                result[tp] = PartitionOffsets(-1, high_watermark)
                unsure.append(tp)
            else:  # nothing readable below the end: an emptied log (start == end), or not in the answer
                result[tp] = PartitionOffsets(-1, latest[tp])
                unsure.append(tp)
        if unsure:
            earliest = self._list_offsets(unsure, EARLIEST)
            for tp in unsure:
                result[tp] = PartitionOffsets(min(earliest[tp], result[tp].end), result[tp].end)
        return result

    def record_times(self, wanted: Iterable[tuple[TopicPartition, int]]) -> dict[tuple[TopicPartition, int], float | None]:
        """Timestamp (Unix s) of the first record at or after each (partition, offset); None where none
        could be read. Fetches start at the lowest offset still wanted per partition, so one fetch answers
        every wanted offset within the batches it returns; records never change, so answers are cached."""
        wanted = set(wanted)
        answers = {key: self._stamps[key] for key in wanted if key in self._stamps}
        todo: dict[TopicPartition, set[int]] = {}
        for tp, offset in wanted - set(answers):
            todo.setdefault(tp, set()).add(offset)
        for _round in range(FETCH_ROUNDS):
            if not todo:
                break
            fetched = self._fetch({tp: min(offsets) for tp, offsets in todo.items()}, RECORD_BYTES)
            for tp in list(todo):
                error_code, high_watermark, log_start, records = fetched.get(tp, (-1, -1, -1, []))
                offsets = todo[tp]
                if error_code == _OFFSET_OUT_OF_RANGE:
                    gone = {o for o in offsets if log_start < 0 or o < log_start}
                    for offset in gone or {min(offsets)}:
                        self._remember((tp, offset), None, answers)
                    offsets -= gone or {min(offsets)}
                elif not records:
                    if error_code == _NO_ERROR and min(offsets) >= high_watermark >= 0:
                        for offset in offsets:  # nothing written there yet; not cached, it may be later
                            answers[(tp, offset)] = None
                        offsets.clear()
                    # else: left out of this answer (tansu ran out of time, or a size limit): next round
                else:
                    for offset in sorted(offsets):
                        record = next((r for r in records if r.offset >= offset), None)
                        if record is None:
                            break
                        self._remember((tp, offset), record.timestamp, answers)
                        offsets.discard(offset)
                if not offsets:
                    del todo[tp]
        for tp, offsets in todo.items():
            for offset in offsets:
                answers[(tp, offset)] = None
        return answers

    def _remember(self, key: tuple[TopicPartition, int], stamp: float | None,
                  answers: dict[tuple[TopicPartition, int], float | None]) -> None:
        answers[key] = stamp
        self._stamps[key] = stamp
        self._stamps.move_to_end(key)
        while len(self._stamps) > STAMP_CACHE:
            self._stamps.popitem(last=False)

    def read(self, tp: TopicPartition, start: int, *, end: int | None = None, limit: int = 1000) -> list[KafkaRecord]:
        """Records of one partition from `start` (up to `end`, exclusive, or the high watermark), at most `limit`."""
        records: list[KafkaRecord] = []
        position = start
        while len(records) < limit and (end is None or position < end):
            error_code, high_watermark, _start, batch = self._fetch({tp: position}, RECORD_BYTES).get(
                tp, (-1, -1, -1, []))
            if error_code not in (_NO_ERROR, -1):  # -1: not in the answer (tansu, nothing to read)
                raise self._error(f"reading {tp} at {position}: {_error_name(error_code)}")
            stop = high_watermark if high_watermark >= 0 else None
            if end is not None:
                stop = end if stop is None else min(stop, end)
            batch = [r for r in batch if stop is None or r.offset < stop]
            if not batch:
                break
            records.extend(batch[: limit - len(records)])
            position = batch[-1].offset + 1
            if stop is not None and position >= stop:
                break
        return records

    # --- the composed read for lag ---------------------------------------------------------------------

    def lag_snapshot(self, groups: Collection[str] | None = None, *,
                     topics_of: Mapping[str, Collection[str]] | None = None,
                     only_topics: Collection[str] | None = None) -> LagSnapshot:
        """Everything the lag engine needs, in a bounded number of requests.

        `groups`: the groups to read (default: every group the brokers list, plus the keys of `topics_of`).
        `topics_of`: topics each group consumes by configuration (the Subscriptions), so a partition it has
        never committed on still shows, with no committed offset. `only_topics` restricts to those topics.
        Committed offsets are read before the end offsets, so a commit racing the read never gives
        negative lag.
        """
        topics_of = topics_of or {}
        names = sorted(set(groups) if groups is not None else set(self.list_groups()) | set(topics_of))
        states = self.describe_groups(names)
        committed = self.committed_offsets(names)
        consumed = {g: {tp.topic for tp in committed.get(g, ({}, None))[0]} | set(topics_of.get(g, ()))
                    for g in names}
        if only_topics is not None:
            consumed = {g: ts & set(only_topics) for g, ts in consumed.items()}
        counts = self.topics(set().union(*consumed.values())) if any(consumed.values()) else {}
        per_group: dict[str, GroupOffsets] = {}
        # each partition named once, not once per group that reads it (54 groups: 1,500 tuples a refresh)
        tps_of = {t: [TopicPartition(t, p) for p in range(n)] for t, n in counts.items()}
        for g in names:
            offsets, error = committed.get(g, ({}, None))
            state, members = states.get(g, (None, None))
            parts = {tp: offsets.get(tp) for t in sorted(consumed[g]) if t in tps_of for tp in tps_of[t]}
            per_group[g] = GroupOffsets(g, state, members, parts, error)
        partitions = self.partition_offsets({tp for g in per_group.values() for tp in g.committed})
        at = time.time()
        lagging = {(tp, c) for g in per_group.values() for tp, c in g.committed.items()
                   if c is not None and partitions[tp].start <= c < partitions[tp].end}
        return LagSnapshot(at, partitions, per_group, self.record_times(lagging))

    # --- writes ------------------------------------------------------------------------------------------

    def produce(self, topic: str, records: Sequence[OutgoingRecord]) -> list[Produced]:
        """Produce and wait for every acknowledgement (acks=all); the results in the order given."""
        if self._producer is None:
            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap, client_id=self.client_id, acks="all", linger_ms=0,
                    retries=3, request_timeout_ms=int(self.timeout_s * 1000),
                    max_block_ms=int(self.timeout_s * 1000))
            except (KafkaError, OSError) as exc:
                raise self._error(f"cannot produce: {exc}") from exc
        try:
            futures = [self._producer.send(topic, value=r.value, key=r.key, headers=list(r.headers),
                                           partition=r.partition) for r in records]
            self._producer.flush(timeout=self.timeout_s)
            sent = [f.get(timeout=self.timeout_s) for f in futures]
        except (KafkaError, OSError) as exc:
            raise self._error(f"producing to {topic} failed: {exc}") from exc
        return [Produced(topic, m.partition, m.offset) for m in sent]

    def delete_records(self, before: Mapping[TopicPartition, int]) -> DeleteOutcome:
        """DeleteRecords: drop every record below `before[tp]`. Says so when the broker cannot (tansu
        advertises the API but closes the connection on it; a Kafka cluster can refuse it by policy)."""
        version = self._version(21, 1)
        if version is None:
            return DeleteOutcome(False, reason="the broker does not offer DeleteRecords")
        calls = []
        for leader, parts in self._by_leader(before).items():
            topics: dict[str, list[tuple[int, int]]] = {}
            for tp in parts:
                topics.setdefault(tp.topic, []).append((tp.partition, before[tp]))
            calls.append((leader, _DeleteRecordsRequestV1(list(topics.items()), int(self.timeout_s * 1000))))
        try:
            responses = self._call(calls)
        except KafkaConnectionError as exc:
            self.close()
            self.topics(())  # still answering? then it was DeleteRecords it would not take
            return DeleteOutcome(False, reason=f"the broker closed the connection on DeleteRecords ({exc})")
        marks: dict[TopicPartition, int] = {}
        errors: set[str] = set()
        for response in responses:
            for topic, parts in response.topics:
                for partition, low_watermark, error_code in parts:
                    if error_code == _NO_ERROR:
                        marks[TopicPartition(topic, partition)] = low_watermark
                    else:
                        errors.add(_error_name(error_code))
        if errors:
            return DeleteOutcome(bool(marks), marks, reason="DeleteRecords refused: " + ", ".join(sorted(errors)))
        return DeleteOutcome(True, marks, reason="DeleteRecords")


def _parse(tp: TopicPartition, data: bytes | None, position: int) -> list[KafkaRecord]:
    """The data records at or after `position` (a fetch returns whole batches, control batches included)."""
    if not data:
        return []
    records: list[KafkaRecord] = []
    batches = MemoryRecords(data)
    while batches.has_next():
        batch = batches.next_batch()
        if batch is None:
            break  # a partial batch at the end of the response
        if getattr(batch, "is_control_batch", False):
            continue
        for r in batch:
            if r.offset < position:
                continue
            stamp = r.timestamp / 1000.0 if r.timestamp is not None and r.timestamp >= 0 else None
            headers = tuple((str(k), bytes(v) if v is not None else b"") for k, v in (r.headers or []))
            records.append(KafkaRecord(tp.topic, tp.partition, r.offset, stamp, r.key, r.value, headers))
    return records


def source_for(target: Target, *, timeout_s: float | None = None) -> KafkaSource:
    """The Kafka source of a target: the sandbox's own broker, or the cluster's bootstrap setting."""
    if isinstance(target, SandboxTarget):
        from console.sandbox.control import status
        from console.sandbox.layout import SandboxLayout

        state = status(SandboxLayout(target.root))
        bootstrap = (state.get("broker") or {}).get("bootstrap")
        if not state.get("up") or not bootstrap:
            raise SourceError("kafka", f"sandbox {target.root}",
                              "the sandbox is not running (todo-console sandbox up)")
        return KafkaSource(bootstrap, timeout_s=timeout_s or 10.0)
    cluster: ClusterTarget = target
    return KafkaSource(cluster.settings.kafka_bootstrap, timeout_s=timeout_s or cluster.settings.request_timeout_s)
