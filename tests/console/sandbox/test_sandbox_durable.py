"""Durable mode: tansu on the sandbox's local S3 keeps topics, records and committed offsets.

Three restarts are checked: the broker alone (the S3 server keeps running), both killed with
SIGKILL (nothing is saved at shutdown: what was acknowledged is on disk), and through the
supervisor, a broker crash then `down`/`up`.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from console.sandbox import control
from console.sandbox.broker import start_tansu
from console.sandbox.layout import SandboxLayout
from console.sandbox.manifests import KafkaTopic
from console.sandbox.plan import Plan
from console.sandbox.ports import free_port
from console.sandbox.s3 import LocalS3, start_local_s3
from console.sandbox.topics import admin_client, ensure_topics, partition_counts

from .conftest import require_tansu, start_sandbox

pytestmark = pytest.mark.broker

TOPIC = KafkaTopic("orders", 3, 1, {}, None, Path("x.yaml"))
GROUP = "durable-test"


@pytest.fixture
def local_s3(tmp_path: Path) -> Iterator[LocalS3]:
    require_tansu()
    s3 = start_local_s3(tmp_path / "s3", tmp_path / "s3.log")
    yield s3
    s3.stop()


def start_durable(tmp_path: Path, s3: LocalS3, port: int):
    return start_tansu(tmp_path / "broker", port=port, storage_url=s3.storage_url, extra_env=s3.tansu_env())


def produce_and_commit(bootstrap: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(5):
        producer.send(TOPIC.name, f"event-{i}".encode(), partition=1)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP,
                             group_instance_id=f"{GROUP}-{uuid.uuid4().hex[:8]}", enable_auto_commit=False)
    consumer.commit({TopicPartition(TOPIC.name, 1): OffsetAndMetadata(3, None)})
    consumer.close()


def assert_survived(bootstrap: str) -> None:
    admin = admin_client(bootstrap)
    try:
        assert partition_counts(admin, [TOPIC.name]) == {TOPIC.name: 3}
        offsets = admin.list_consumer_group_offsets(
            GROUP, partitions=[TopicPartition(TOPIC.name, p) for p in range(3)])
    finally:
        admin.close()
    assert offsets[TopicPartition(TOPIC.name, 1)].offset == 3
    # The records are there too: reading from the committed offset returns the last two.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    tp = TopicPartition(TOPIC.name, 1)
    consumer.assign([tp])
    consumer.seek(tp, 3)
    values: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(values) < 2 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            values += [r.value for r in records]
    consumer.close()
    assert values == [b"event-3", b"event-4"]
    assert ensure_topics(bootstrap, [TOPIC])[0].status == "exists"


def test_topics_and_offsets_survive_a_broker_restart(tmp_path: Path, local_s3: LocalS3) -> None:
    port = free_port()
    broker = start_durable(tmp_path, local_s3, port)
    try:
        assert ensure_topics(broker.bootstrap, [TOPIC])[0].status == "created"
        produce_and_commit(broker.bootstrap)
    finally:
        broker.stop()
    broker = start_durable(tmp_path, local_s3, port)
    try:
        assert_survived(broker.bootstrap)
    finally:
        broker.stop()


def test_memory_storage_loses_them(tmp_path: Path) -> None:
    """The contrast that makes the durable test meaningful: memory:// forgets on restart."""
    require_tansu()
    port = free_port()
    broker = start_tansu(tmp_path / "broker", port=port)
    try:
        ensure_topics(broker.bootstrap, [TOPIC])
    finally:
        broker.stop()
    broker = start_tansu(tmp_path / "broker", port=port)
    try:
        admin = admin_client(broker.bootstrap)
        assert partition_counts(admin, [TOPIC.name]) == {}
        admin.close()
    finally:
        broker.stop()


def test_they_survive_kill_9_of_the_broker_and_the_s3_server(tmp_path: Path, local_s3: LocalS3) -> None:
    """No shutdown hook runs on SIGKILL: what the broker acknowledged must already be on disk."""
    port = free_port()
    broker = start_durable(tmp_path, local_s3, port)
    ensure_topics(broker.bootstrap, [TOPIC])
    produce_and_commit(broker.bootstrap)
    assert broker.process is not None
    assert local_s3.process is not None
    for process in (broker.process, local_s3.process):
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    broker.stop()
    local_s3.stop()

    fresh = start_local_s3(local_s3.data, tmp_path / "s3-2.log")
    try:
        broker = start_durable(tmp_path, fresh, port)
        try:
            assert_survived(broker.bootstrap)
        finally:
            broker.stop()
    finally:
        fresh.stop()


def test_supervised_durable_sandbox_keeps_offsets_across_crash_and_down_up(
    tiny_plan: Callable[..., Plan],
) -> None:
    """Through the supervisor: tansu killed -9 and restarted, then a full down/up."""
    plan = tiny_plan()
    plan.broker.mode, plan.broker.s3_port = "durable", free_port()
    layout = SandboxLayout(Path(plan.dir))
    state = start_sandbox(layout, plan)
    try:
        assert state["broker"]["storage"] == "s3://tansu/"
        assert state["broker"]["s3"]["pid"]
        produce_and_commit(plan.broker.bootstrap)
        os.kill(state["broker"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while (control.read_state(layout) or {})["broker"]["restarts"] != 1:
            assert time.monotonic() < deadline, "broker not restarted"
            time.sleep(0.05)
        assert_survived(plan.broker.bootstrap)
    finally:
        control.down(layout)
    assert (layout.s3_data / "tansu.sqlite3").is_file()  # the bucket lives in the sandbox directory

    start_sandbox(layout, plan)
    try:
        assert_survived(plan.broker.bootstrap)
    finally:
        control.down(layout)
