"""The conventions every operator command shares: tables, JSON documents, confirmations, read-only mode."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from console.cli import CliError
from console.output import confirm, emit_json, format_age, format_duration, guard_mutation, table


def test_table_aligns_columns_and_marks_missing_values() -> None:
    text = table(["GROUP", "LAG", "ETA"], [["worker", 12, None], ["notification", 0, 3.25]])
    assert text.splitlines() == [
        "GROUP         LAG  ETA",
        "worker        12   -",
        "notification  0    3.2",
    ]


def test_json_document_names_its_kind_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    emit_json("lag", {"groups": []}, target="sandbox /tmp/x")
    doc = json.loads(capsys.readouterr().out)
    assert (doc["kind"], doc["version"], doc["target"], doc["groups"]) == ("lag", 1, "sandbox /tmp/x", [])
    assert isinstance(doc["generated_at"], float)


def test_readonly_refuses_a_mutation_by_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CliError, match="read-only"):
        guard_mutation(argparse.Namespace(readonly=True), "dlq redrive")
    monkeypatch.setenv("TODO_CONSOLE_READONLY", "1")
    with pytest.raises(CliError, match="read-only"):
        guard_mutation(argparse.Namespace(readonly=False), "dlq purge")
    monkeypatch.setenv("TODO_CONSOLE_READONLY", "0")
    guard_mutation(argparse.Namespace(readonly=False), "dlq purge")


def test_confirmation_needs_yes_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert confirm(argparse.Namespace(yes=True), "purge 3 messages?")
    with pytest.raises(CliError, match="needs --yes"):
        confirm(argparse.Namespace(yes=False), "purge 3 messages?")


def test_durations_are_short_enough_for_a_table_column() -> None:
    assert [format_duration(s) for s in (None, 4.4, 245, 7800, 273600)] == ["-", "4s", "4m05s", "2h10m", "3d04h"]


def test_ages_keep_their_seconds_only_under_a_minute() -> None:
    """k9s's ages: a dashboard table with one repaints once a minute, not on every refresh."""
    assert [format_age(s) for s in (None, 4.4, 59.4, 60, 119.6, 245, 3599, 3600, 7800, 273600)] == [
        "-", "4s", "59s", "1m", "2m", "4m", "59m", "1h00m", "2h10m", "3d04h"]
