"""OKE on OCI from a cluster spec: preflight, plan, apply, destroy, kubeconfig (see provisioning/README.md)."""

from pathlib import Path

# The Always Free example: the default of `todo-console provision` and of the budget checks.
DEFAULT_SPEC = Path(__file__).resolve().parent / "clusters" / "always-free.yaml"
