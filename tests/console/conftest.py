"""Fixtures of every console test: the Kubernetes stand-in (tests/utils/kube_fixtures.py)."""

import threading
from collections.abc import Iterator

import pytest

from tests.utils.kube_fixtures import cluster, kubeconfig, prod_objects, serving_cert  # noqa: F401


@pytest.fixture(autouse=True)
def _dashboards_closed_within_their_test() -> Iterator[None]:
    """A dashboard closes its sources on a daemon thread (`dashboard-close`) so quitting never waits on a
    broker. In a test process that thread can outlive its test and log ("Closing connection") into the
    stream pytest already closed, and the logging error lands in a later test's captured stderr, failing
    tests that read stderr exactly. Waiting for it here keeps each App's last words in its own test."""
    yield
    for thread in threading.enumerate():
        if thread.name == "dashboard-close":
            thread.join(timeout=60)
