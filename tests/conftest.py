"""Suite-wide fixtures: a real PostgreSQL server and a real Kafka-protocol broker the suite starts itself.

In CI (CI=true) a missing PostgreSQL or broker is a failure, not a skip: both paths are core.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.sandbox.broker import Broker, BrokerError, external_broker, start_tansu
from console.sandbox.manifests import load_manifests, topics_to_create
from console.sandbox.topics import ensure_topics
from tests.utils.dapr_sdk import sdk_settings_restored
from tests.utils.postgres import PostgresServer, PostgresUnavailable, running_postgres
from tests.utils.required import missing

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        missing(f"PostgreSQL not available: {exc}")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The real Kafka-protocol broker (tansu, or KAFKA_BOOTSTRAP), with the topics kustomize/base declares."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        broker = external_broker(os.environ["KAFKA_BOOTSTRAP"])
    else:
        try:
            broker = start_tansu(tmp_path_factory.mktemp("broker"))
        except BrokerError as exc:
            missing(f"no Kafka-protocol broker (install the 'sandbox' extra): {exc}")
    ensure_topics(broker.bootstrap, topics_to_create(load_manifests(REPO / "kustomize" / "base")))
    yield broker
    broker.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say in CI's output how many tests ran against the real PostgreSQL server and broker."""
    passed = terminalreporter.stats.get("passed", [])
    for label, marker in (("real PostgreSQL server", "postgres"), ("real Kafka-protocol broker", "broker")):
        count = sum(1 for report in passed if marker in report.nodeid.lower() or marker in report.keywords)
        terminalreporter.write_line(f"{count} tests passed against a {label}")


@pytest.fixture(autouse=True)
def _isolated_dapr_sdk_settings() -> Iterator[None]:
    """Each test starts with the Dapr SDK settings the one before it found (see sdk_settings_restored)."""
    with sdk_settings_restored():
        yield


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Each test leaves the root logger as it found it.

    A service app built in-process (`configure_logging`) or a CLI under test routes the root logger to the
    sys.stdout or sys.stderr of that moment, at INFO: in a test, a capture stream pytest closes when the test
    ends. Left in place, every later log line of the worker process (kafka-python's "Closing connection" from
    a connection collected late, say) went to that closed stream, and logging's "--- Logging error ---" report
    landed in whichever test was running, failing the tests that read their stderr exactly. pytest's own
    capture handlers come and go with each test phase and are left to pytest.
    """
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
    root.setLevel(level)
