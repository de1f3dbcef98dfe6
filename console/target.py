"""Which system the console looks at: the local sandbox, or a Kubernetes cluster through a kube context.

Every operator command takes the same flags (`--sandbox [DIR]`, `--context NAME`, `--kubeconfig FILE`,
`--namespace NS`) and resolves them here once, so the commands, the dashboard and the runbooks agree on
what "the system" is. By default the running sandbox wins if there is one (a developer at their desk),
otherwise the current kube context (an operator), otherwise in-cluster config (the console running in a
pod). The addresses of Kafka, Prometheus and Loki cannot be discovered from a kube context alone (they
live inside the cluster), so they come from settings with in-cluster defaults; a laptop points them at
`kubectl port-forward`s (see console/README.md).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from console.cli import CliError
from console.sandbox.layout import SandboxLayout, default_dir

APP_NAMESPACE = "todo-app"
KAFKA_NAMESPACE = "kafka"
SETTINGS_PREFIX = "TODO_CONSOLE_"
MAX_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ConsoleSettings:
    """Where the cluster's data sources answer; `TODO_CONSOLE_<FIELD>` environment variables override.

    The defaults are the in-cluster service names the Kustomize deployment creates, right for a console
    that runs in the cluster; from a laptop, port-forward and point these at 127.0.0.1. (Four values read
    from the environment: a plain dataclass, because pydantic-settings would cost every command a few
    hundred milliseconds of imports.)
    """

    kafka_bootstrap: str = "todo-kafka-kafka-bootstrap.kafka.svc:9092"
    prometheus_url: str = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    loki_url: str = "http://loki.monitoring.svc:3100"  # single binary, no gateway (kustomize/operators/loki)
    request_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsoleSettings:
        """The settings with the environment's overrides; a bad value is a one-line `CliError` naming it."""
        environ = os.environ if environ is None else environ

        def setting(name: str, default: str) -> str:
            return environ.get(SETTINGS_PREFIX + name.upper(), "").strip() or default

        default = cls()
        raw = setting("request_timeout_s", str(default.request_timeout_s))
        try:
            timeout = float(raw)
        except ValueError:
            timeout = float("nan")
        if not 0 < timeout <= MAX_TIMEOUT_S:
            raise CliError(f"{SETTINGS_PREFIX}REQUEST_TIMEOUT_S={raw!r}: give seconds above 0, at most "
                           f"{MAX_TIMEOUT_S:g}")
        return cls(kafka_bootstrap=setting("kafka_bootstrap", default.kafka_bootstrap),
                   prometheus_url=setting("prometheus_url", default.prometheus_url),
                   loki_url=setting("loki_url", default.loki_url), request_timeout_s=timeout)


@dataclass(frozen=True)
class SandboxTarget:
    """The local sandbox in `root`: its supervisor state stands in for pods, its JSON logs for Loki."""

    root: Path
    kind: Literal["sandbox"] = "sandbox"

    @property
    def label(self) -> str:
        return f"sandbox {self.root}"


@dataclass(frozen=True)
class ClusterTarget:
    """A cluster reached through a kubeconfig context (None: the kubeconfig's current one) or in-cluster."""

    context: str | None
    kubeconfig: Path | None
    namespace: str
    in_cluster: bool
    settings: ConsoleSettings = field(default_factory=ConsoleSettings.from_env)
    kind: Literal["cluster"] = "cluster"

    @property
    def label(self) -> str:
        if self.in_cluster:
            return f"in-cluster ({self.namespace})"
        return f"context {self.context or '(current)'} ({self.namespace})"


Target = SandboxTarget | ClusterTarget


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every operator command shares; `resolve_target` reads them."""
    group = parser.add_argument_group("target (default: the running sandbox, else the current kube context)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--sandbox", nargs="?", const="", default=None, metavar="DIR",
                       help="the local sandbox (default dir: $TODO_SANDBOX_DIR or <repo>/.sandbox)")
    where.add_argument("--context", default=None, help="a context of the kubeconfig")
    group.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    group.add_argument("--namespace", "-N", default=None, help=f"the application namespace (default: {APP_NAMESPACE})")


def resolve_target(args: argparse.Namespace) -> Target:
    """Turn the shared flags into a Target, refusing combinations that cannot mean anything."""
    sandbox_flag = getattr(args, "sandbox", None)
    context = getattr(args, "context", None)
    kubeconfig = getattr(args, "kubeconfig", None)
    namespace = getattr(args, "namespace", None) or APP_NAMESPACE
    if sandbox_flag is not None:
        if kubeconfig is not None:
            raise CliError("--sandbox and --kubeconfig cannot be combined")
        root = (Path(sandbox_flag) if sandbox_flag else default_dir()).resolve()
        return SandboxTarget(root)
    if context is None and kubeconfig is None:
        layout = SandboxLayout(default_dir())
        if _sandbox_running(layout):
            return SandboxTarget(layout.root)
    if kubeconfig is not None and not kubeconfig.is_file():
        raise CliError(f"--kubeconfig {kubeconfig}: no such file")
    in_cluster = (context is None and kubeconfig is None and not _has_kubeconfig()
                  and bool(os.environ.get("KUBERNETES_SERVICE_HOST")))
    if context is None and kubeconfig is None and not in_cluster and not _has_kubeconfig():
        raise CliError("no target: no sandbox is running here and no kubeconfig was found "
                       "(`todo-console sandbox up`, or --context/--kubeconfig)")
    return ClusterTarget(context=context, kubeconfig=kubeconfig, namespace=namespace, in_cluster=in_cluster)


def _sandbox_running(layout: SandboxLayout) -> bool:
    """Is a supervisor running in `layout`? Without a pid file there is none, and the sandbox's control module
    (which imports the broker's client and the services' auth: most of a second) is not loaded to say so."""
    if not layout.pid.is_file():
        return False
    from console.sandbox import control

    return control.supervisor_pid(layout) is not None


def _has_kubeconfig() -> bool:
    paths = os.environ.get("KUBECONFIG")
    if paths:
        return any(Path(p).expanduser().is_file() for p in paths.split(os.pathsep) if p)
    return (Path.home() / ".kube" / "config").is_file()
