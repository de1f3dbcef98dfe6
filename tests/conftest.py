"""Suite-wide fixtures: a real PostgreSQL server the suite starts itself.

In CI (CI=true) a missing PostgreSQL is a failure, not a skip: the PostgreSQL path is core.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.utils.postgres import PostgresServer, PostgresUnavailable, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must run in CI: {exc}")
        pytest.skip(f"PostgreSQL not available here: {exc}")
