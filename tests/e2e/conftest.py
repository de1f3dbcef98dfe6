"""One real sandbox for the end-to-end tests: `todo-console sandbox up` (broker, a dev sidecar per
service, every service), torn down with `sandbox down` at the end of the session."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.sandbox.layout import REPO_ROOT, SandboxLayout
from services.platform.auth import mint_dev_token
from tests.utils.kafka_topics import require_tansu

CLI = [sys.executable, "-c", "import sys; from console.cli import main; sys.exit(main(sys.argv[1:]))"]


@dataclass
class Sandbox:
    layout: SandboxLayout
    urls: dict[str, str]
    env: dict[str, str]

    @property
    def api(self) -> str:
        return self.urls["api"]

    def token(self, user: str, scopes: str = "tasks:read tasks:write") -> str:
        secret = json.loads(self.layout.secrets.read_text())["todo-auth"]["jwt-secret"]
        return mint_dev_token(secret, user, scopes=scopes)

    def headers(self, user: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}", **extra}

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers=self.headers(user), timeout=15)

    def log_lines(self, service: str, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        path = self.layout.log(service)
        found = []
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and predicate(entry):
                found.append(entry)
        return found


def _cli(env: dict[str, str], *args: str, timeout: float = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "sandbox", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


@contextmanager
def running_sandbox(root: Path) -> Iterator[Sandbox]:
    """`todo-console sandbox up` in `root` on free ports, and `down` whatever happens."""
    require_tansu()
    layout = SandboxLayout(root)
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "DATABASE_URL")}
    env.update({"TODO_SANDBOX_DIR": str(layout.root), "TODO_SANDBOX_PORT_BASE": "0"})
    up = _cli(env, "up", "--timeout", "150")
    try:
        if up.returncode != 0:
            pytest.fail(f"sandbox up failed:\n{up.stdout}\n{up.stderr}")
        urls = dict(re.findall(r"^(\w[\w ]*?)\s{2,}(\S+)$", up.stdout, re.MULTILINE))
        yield Sandbox(layout, urls, env)
    finally:
        _cli(env, "down", timeout=60)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("e2e") / "sandbox") as running:
        yield running
