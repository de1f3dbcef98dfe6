"""`missing()` fails only in CI, and only a true-ish CI variable means CI."""

from __future__ import annotations

import pytest

from tests.utils.required import in_ci, missing


@pytest.mark.parametrize(("value", "ci"), [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), (" true ", True),
    ("false", False), ("0", False), ("no", False), ("", False), ("anything", False),
])
def test_only_a_true_ish_ci_variable_is_ci(monkeypatch: pytest.MonkeyPatch, value: str, ci: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_missing_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI: promtool not found"):
        missing("promtool not found")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=r"^promtool not found$"):
        missing("promtool not found")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        missing("promtool not found")
