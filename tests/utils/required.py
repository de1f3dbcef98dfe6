"""Real parts the suite runs against (PostgreSQL, tansu, kubectl, promtool, tmux, the CRD schemas).

In CI a missing part fails the test: CI must exercise the real thing. Elsewhere the test is
skipped, and the skip names what is missing and how to get it. CI is a true-ish `CI` variable
(`true`, `1`, `yes`, as CI services set it and `.ci/run` exports it); `CI=false` is not CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import NoReturn

import pytest

TRUE_VALUES = frozenset({"true", "1", "yes"})
# Where the CRD schemas come from, for the skips of the tests that validate manifests against them.
CRD_SCHEMAS = ("the CRD schemas come from ../shared/schemas/crds beside the repository (the team's copy), "
               "or from `todo-console crds fetch DIR` with CRD_SCHEMA_DIR=DIR")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in TRUE_VALUES


def missing(reason: str) -> NoReturn:
    """Fail in CI, skip elsewhere, with `reason` (what is missing, and how to get it)."""
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def require(probe: Callable[[], object], errors: type[Exception] | tuple[type[Exception], ...], what: str) -> None:
    """Run `probe`; if it raises one of `errors`, the part is missing."""
    try:
        probe()
    except errors as exc:
        missing(f"{what} not available: {exc}")


def require_command(name: str, how: str) -> str:
    """The path of the program `name` (a Debian package's, such as tmux); missing, `how` says how to get it."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} not found: {how}")
    return found
