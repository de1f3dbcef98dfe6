"""Running `todo-console` in-process against a Kafka broker, as an operator would from a laptop: a kube context
(any kubeconfig file; these commands need no API server) with TODO_CONSOLE_KAFKA_BOOTSTRAP pointing at the
broker, as after `kubectl port-forward`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Console = Callable[..., Run]


@pytest.fixture
def console_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
               ) -> Callable[[str], Console]:
    """console_at(bootstrap)(*args) runs `todo-console *args` against that broker."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    monkeypatch.delenv("TODO_CONSOLE_READONLY", raising=False)

    def at(bootstrap: str) -> Console:
        def run(*args: str) -> Run:
            monkeypatch.setenv("TODO_CONSOLE_KAFKA_BOOTSTRAP", bootstrap)
            capsys.readouterr()
            code = main([*args, "--kubeconfig", str(kubeconfig)])
            captured = capsys.readouterr()
            return Run(code, captured.out, captured.err)
        return run
    return at
