"""A sandbox of its own for one benchmark run: started as `todo-console sandbox up` starts it, in a
temporary directory on free ports, and always stopped afterwards."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from console.sandbox import control
from console.sandbox.layout import SandboxLayout

T = TypeVar("T")


class SandboxUnavailable(RuntimeError):
    """The sandbox could not start: the benchmark has nothing to measure."""


@contextmanager
def fresh_sandbox(prefix: str, **up_args: Any) -> Iterator[tuple[SandboxLayout, control.UpResult]]:
    """`up_args` go to `control.up` (e.g. durable=True)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        layout = SandboxLayout(Path(tmp))
        try:
            result = control.up(layout, port_base=0, timeout_s=120, **up_args)
        except control.SandboxError as exc:
            raise SandboxUnavailable(f"cannot start the sandbox: {exc}") from exc
        try:
            yield layout, result
        finally:
            control.down(layout)


def backend_url(result: control.UpResult) -> str:
    return f"http://127.0.0.1:{result.state['processes']['backend']['port']}"


def measure(bench: str, prefix: str, body: Callable[[SandboxLayout, control.UpResult], T]) -> T | int:
    """`body` run on a fresh sandbox; or the exit code after one line on stderr: 2 when the sandbox
    could not start, 1 when the measurement failed (a RuntimeError: an event that never came)."""
    try:
        with fresh_sandbox(prefix) as (layout, result):
            return body(layout, result)
    except SandboxUnavailable as exc:
        print(f"{bench}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"{bench}: {exc}", file=sys.stderr)
        return 1
