"""Which system an operator runbook (deploy, verify-rollout, lag-report, dlq-triage) works on, from its parameters.

The same choice the console's `--sandbox` / `--context` / `--kubeconfig` flags make (console/target.py), but
explicit: a runbook says `target` rather than guessing from what runs on the machine, because its record must
say what it looked at. The sandbox's modules load only when the sandbox is the target: a deploy to a cluster
should not pay for the sandbox's Kafka and supervisor imports in its kernel.
"""

from __future__ import annotations

import os
from pathlib import Path

from console.manifests.render import REPO_ROOT
from console.runbooks.procedures import ProcedureError
from console.target import APP_NAMESPACE, ClusterTarget, SandboxTarget, Target


def repo_path(text: str) -> Path:
    """A path parameter: `~` expanded, a relative one taken from the repository root (the kernel runs in
    notebooks/, a person thinks from the checkout)."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def cluster_target(context: str = "", kubeconfig: str = "", namespace: str = APP_NAMESPACE) -> ClusterTarget | None:
    """The cluster a kubeconfig names (`context`, else its current one), or in-cluster config in a pod; None
    when there is neither (no `kubeconfig`, no $KUBECONFIG or ~/.kube/config, not in a pod)."""
    if kubeconfig:
        path = repo_path(kubeconfig)
        if not path.is_file():
            raise ProcedureError(f"kubeconfig {path}: no such file")
        return ClusterTarget(context=context or None, kubeconfig=path, namespace=namespace, in_cluster=False)
    configured = [p for p in (os.environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
    found = any(Path(p).expanduser().is_file() for p in configured) if configured else \
        (Path.home() / ".kube" / "config").is_file()
    if found or context:
        return ClusterTarget(context=context or None, kubeconfig=None, namespace=namespace, in_cluster=False)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return ClusterTarget(context=None, kubeconfig=None, namespace=namespace, in_cluster=True)
    return None


def operator_target(target: str, *, sandbox_dir: str = "", context: str = "", kubeconfig: str = "",
                    namespace: str = APP_NAMESPACE, kube_api: bool = True) -> Target:
    """What `target` names: the sandbox (its directory, default the usual one, which must be running) or a
    cluster (a kubeconfig context, or in-cluster). `kube_api=False`: the runbook reaches the cluster only at
    the addresses of the console's settings (Kafka, Prometheus), so no kubeconfig is needed."""
    if target == "sandbox":
        from console.sandbox import control
        from console.sandbox.layout import SandboxLayout, default_dir

        layout = SandboxLayout(repo_path(sandbox_dir).resolve() if sandbox_dir else default_dir())
        if not control.status(layout).get("up"):
            raise ProcedureError(f"no sandbox is running in {layout.root}: start one with `todo-console sandbox up`")
        return SandboxTarget(layout.root)
    if target == "cluster" and not kube_api:
        return ClusterTarget(context=None, kubeconfig=None, namespace=namespace, in_cluster=False)
    if target == "cluster":
        cluster = cluster_target(context, kubeconfig, namespace)
        if cluster is None:
            raise ProcedureError("no cluster: no kubeconfig found (set `kubeconfig`, $KUBECONFIG or ~/.kube/config) "
                                 "and not running in a pod")
        return cluster
    raise ProcedureError(f"unknown target {target!r}: sandbox or cluster")
