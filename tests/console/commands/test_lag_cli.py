"""`todo-console lag` against the real broker: the table, the JSON document, the exit codes (1 for a group in
ERR, 2 for a broker that is down or bad input), and what KEDA would do for a group with a ScaledObject."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console.model.kafka import OutgoingRecord, TopicPartition
from console.sandbox.broker import Broker
from console.sandbox.ports import free_port
from console.sources.kafka import KafkaSource
from tests.console.commands.conftest import Console
from tests.utils.kafka_topics import create_topics

pytestmark = pytest.mark.broker
FAST = ("--samples", "3", "--interval", "0.3", "--min-window", "0.5")


@pytest.fixture(scope="module")
def groups(kafka_broker: Broker) -> tuple[str, str, str]:
    """A topic of 2 partitions with 5 records each; `stuck` committed at 1 (no consumer: it will STOP),
    `done` committed at the end."""
    run = uuid.uuid4().hex[:6]
    topic, stuck, done = f"lagcli-{run}", f"stuck-{run}", f"done-{run}"
    create_topics(kafka_broker.bootstrap, {topic: 2})
    with KafkaSource(kafka_broker.bootstrap) as source:
        for p in range(2):
            source.produce(topic, [OutgoingRecord(b"%d" % i, partition=p) for i in range(5)])
        source.commit(stuck, {TopicPartition(topic, 0): 1, TopicPartition(topic, 1): 5})
        source.commit(done, {TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 5})
    return topic, stuck, done


def test_a_group_that_stopped_with_lag_is_err_and_exit_1(kafka_broker: Broker, groups: tuple[str, str, str],
                                                        console_at: Callable[[str], Console]) -> None:
    topic, stuck, _done = groups
    run = console_at(kafka_broker.bootstrap)("lag", stuck, *FAST, "--json")
    assert run.code == 1, run.err
    doc = run.json()
    assert (doc["kind"], doc["version"], doc["samples"]) == ("lag", 1, 3)
    (group,) = doc["groups"]
    assert (group["group"], group["status"], group["total_lag"]) == (stuck, "ERR", 4)
    p0, p1 = group["partitions"]
    assert (p0["topic"], p0["partition"], p0["committed"], p0["end"], p0["lag"], p0["status"]) == (
        topic, 0, 1, 5, 4, "STOP")
    assert p0["time_lag_from"] == "record"
    assert p0["time_lag_s"] > 0
    assert (p1["lag"], p1["status"], p1["time_lag_s"]) == (0, "OK", 0.0)
    assert [h["lag"] for h in p0["history"]] == [4, 4, 4]
    assert [h["lag"] for h in group["history"]] == [4, 4, 4]
    assert group["keda"] is None


def test_a_caught_up_group_is_ok_and_exit_0_and_the_table_reads(kafka_broker: Broker, groups: tuple[str, str, str],
                                                               console_at: Callable[[str], Console]) -> None:
    topic, _stuck, done = groups
    run = console_at(kafka_broker.bootstrap)("lag", done, *FAST)
    assert run.code == 0, run.err
    header, row, blank, p_header, *p_rows = run.out.splitlines()
    assert header.split()[:5] == ["GROUP", "STATUS", "LAG", "TIME", "LAG"]
    assert row.split()[:4] == [done, "OK", "0", "0s"]
    assert blank == ""
    assert p_header.split()[:2] == ["GROUP", "PARTITION"]
    assert [r.split()[1] for r in p_rows] == [f"{topic}[0]", f"{topic}[1]"]


def test_keda_for_the_worker_reads_its_scaled_object(kafka_broker: Broker, console_at: Callable[[str], Console]
                                                     ) -> None:
    """The prod overlay scales worker on task-events (lagThreshold 50, offsetResetPolicy earliest): KEDA counts a
    partition without a commit as its whole end offset."""
    run = console_at(kafka_broker.bootstrap)("lag", "worker", "--topic", "task-events", *FAST, "--json")
    assert run.code in (0, 1), run.err
    (group,) = run.json()["groups"]
    keda = group["keda"]
    assert (keda["scaled_object"], keda["min_replicas"], keda["max_replicas"]) == ("worker", 1, 3)
    (trigger,) = keda["triggers"]
    assert (trigger["topic"], trigger["lag_threshold"], trigger["partitions"]) == ("task-events", 50, 3)
    expected = sum(p["end"] - (p["committed"] if p["committed"] is not None else 0) for p in group["partitions"])
    assert trigger["lag"] == expected
    assert 1 <= keda["desired_replicas"] <= 3


def test_a_broker_that_is_down_is_one_line_and_exit_2(console_at: Callable[[str], Console]) -> None:
    address = f"127.0.0.1:{free_port()}"
    run = console_at(address)("lag", "--samples", "1")
    assert run.code == 2
    assert run.err.startswith(f"todo-console lag: kafka at {address}: no broker answers")
    assert run.err.count("\n") == 1
    assert run.out == ""


def test_bad_input_is_refused_before_anything_is_read(kafka_broker: Broker, console_at: Callable[[str], Console]
                                                      ) -> None:
    console = console_at(kafka_broker.bootstrap)
    assert "--samples must be at least 1" in console("lag", "--samples", "0").err
    unknown = console("lag", f"nobody-{uuid.uuid4().hex[:6]}", "--samples", "1")
    assert unknown.code == 2
    assert "no consumer group nobody-" in unknown.err


def test_watch_keeps_printing_documents_until_interrupted(kafka_broker: Broker, groups: tuple[str, str, str],
                                                         kubeconfig: Path) -> None:
    _topic, stuck, _done = groups
    process = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "lag", stuck, "--watch", "--json", "--interval", "0.3",
         "--kubeconfig", str(kubeconfig)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TODO_CONSOLE_KAFKA_BOOTSTRAP": kafka_broker.bootstrap})
    assert process.stdout is not None
    decoder, text = json.JSONDecoder(), ""
    documents: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    try:
        while len(documents) < 3 and time.monotonic() < deadline:
            text += process.stdout.readline()
            try:
                doc, end = decoder.raw_decode(text.strip())
            except ValueError:
                continue
            documents.append(doc)
            text = text.strip()[end:]
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)  # drains both pipes: a child blocked writing to a full one cannot exit
        code = process.returncode
    assert [d["samples"] for d in documents] == [1, 2, 3]
    assert [len(d["groups"][0]["partitions"][0]["history"]) for d in documents] == [1, 2, 3]
    assert code == 130


def test_a_sandbox_that_is_not_running_is_one_line_and_exit_2(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    code = main(["lag", "--sandbox", str(tmp_path), "--samples", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"todo-console lag: kafka at sandbox {tmp_path}: the sandbox is not running (todo-console sandbox up)\n"
