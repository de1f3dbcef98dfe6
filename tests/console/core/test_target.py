"""Which system a command looks at, from the shared flags and what is running here."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from console.cli import CliError
from console.target import ClusterTarget, SandboxTarget, add_target_arguments, resolve_target


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_target_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(autouse=True)
def no_sandbox_no_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TODO_SANDBOX_DIR", str(tmp_path / "no-sandbox"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def test_explicit_sandbox_dir(tmp_path: Path) -> None:
    target = resolve_target(parse("--sandbox", str(tmp_path)))
    assert target == SandboxTarget(tmp_path.resolve())


def test_nothing_to_look_at_is_a_one_line_error() -> None:
    with pytest.raises(CliError, match="no sandbox is running here and no kubeconfig"):
        resolve_target(parse())


def test_current_context_of_the_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(config))
    target = resolve_target(parse("--namespace", "other"))
    assert isinstance(target, ClusterTarget)
    assert (target.context, target.namespace, target.in_cluster) == (None, "other", False)


def test_in_cluster_when_there_is_no_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    target = resolve_target(parse())
    assert isinstance(target, ClusterTarget)
    assert target.in_cluster
    assert target.label == "in-cluster (todo-app)"


def test_a_missing_kubeconfig_file_and_contradictory_flags_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="no such file"):
        resolve_target(parse("--kubeconfig", str(tmp_path / "nope")))
    with pytest.raises(SystemExit):
        parse("--sandbox", "--context", "prod")
    with pytest.raises(CliError, match="cannot be combined"):
        resolve_target(parse("--sandbox", str(tmp_path), "--kubeconfig", str(tmp_path)))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TODO_CONSOLE_PROMETHEUS_URL", "http://127.0.0.1:9090")
    assert ClusterTarget(None, None, "todo-app", False).settings.prometheus_url == "http://127.0.0.1:9090"


def test_settings_come_from_the_environment_and_a_bad_timeout_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from console.target import ConsoleSettings

    assert ConsoleSettings.from_env({}) == ConsoleSettings()
    settings = ConsoleSettings.from_env({"TODO_CONSOLE_KAFKA_BOOTSTRAP": " 127.0.0.1:9092 ",
                                         "TODO_CONSOLE_REQUEST_TIMEOUT_S": "2.5", "TODO_CONSOLE_LOKI_URL": ""})
    assert (settings.kafka_bootstrap, settings.request_timeout_s, settings.loki_url) == (
        "127.0.0.1:9092", 2.5, ConsoleSettings().loki_url)
    for bad in ("0", "-1", "121", "soon", "nan"):
        with pytest.raises(CliError, match=rf"^TODO_CONSOLE_REQUEST_TIMEOUT_S='{bad}': give seconds above 0, at most 120$"):
            ConsoleSettings.from_env({"TODO_CONSOLE_REQUEST_TIMEOUT_S": bad})
    monkeypatch.setenv("TODO_CONSOLE_PROMETHEUS_URL", "http://127.0.0.1:9090")
    assert ClusterTarget(context=None, kubeconfig=None, namespace="todo-app", in_cluster=True).settings.prometheus_url \
        == "http://127.0.0.1:9090"  # read when the target is made
