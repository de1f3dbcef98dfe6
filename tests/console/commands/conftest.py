"""Running `todo-console` in-process against a Kafka broker, as an operator would from a laptop: a kube context
(the stand-in API server serving the prod overlay: the Subscriptions and ScaledObjects come from it) with
TODO_CONSOLE_KAFKA_BOOTSTRAP pointing at the broker, as after `kubectl port-forward`."""

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
def console_at(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
               ) -> Callable[[str], Console]:
    """console_at(bootstrap)(*args) runs `todo-console *args` against that broker and the stand-in cluster."""

    def at(bootstrap: str) -> Console:
        def run(*args: str) -> Run:
            monkeypatch.setenv("TODO_CONSOLE_KAFKA_BOOTSTRAP", bootstrap)
            capsys.readouterr()
            code = main([*args, "--kubeconfig", str(kubeconfig)])
            captured = capsys.readouterr()
            return Run(code, captured.out, captured.err)
        return run
    return at
