"""Where a sandbox keeps its files: one directory holds everything, so `rm -r` resets it.

Default `<repo>/.sandbox` (gitignored), or `$TODO_SANDBOX_DIR`. Keeping every path in one
place lets the CLI, the supervisor and the tests agree without passing a dozen arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_DIR = "TODO_SANDBOX_DIR"


def default_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or REPO_ROOT / ".sandbox").resolve()


@dataclass(frozen=True)
class SandboxLayout:
    """The files of one sandbox directory."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        """Written by the supervisor: phase, processes, restarts (read by `status` and the console)."""
        return self.root / "state.json"

    @property
    def pid(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def plan(self) -> Path:
        """What the supervisor runs, written by `up` before it starts the supervisor."""
        return self.root / "plan.json"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.json"

    @property
    def registry(self) -> Path:
        return self.root / "registry.json"

    @property
    def s3_data(self) -> Path:
        """Durable mode: the local S3's bucket file (`tansu.sqlite3`), written as the broker stores."""
        return self.root / "s3"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @property
    def sidecar_state(self) -> Path:
        """Shared by every sidecar: one state store for all apps, keys prefixed by app-id as daprd does."""
        return self.root / "dapr-state"

    @property
    def postgres_data(self) -> Path:
        """`up --db postgres`: the PostgreSQL cluster, kept across down/up as the SQLite files are."""
        return self.root / "postgres"

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.root / name}.db"

    def ensure(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
