"""Deploy an overlay: render it, validate it, apply it server-side, wait for every rollout, undo on failure.

Render is the real kustomize (console.manifests.render) over the operator's kustomize tree, with `image_tag`
set on every todo-* image, as continuous deployment's `kustomize edit set image` does. Validation is what
the repository already trusts: strict schemas for every object (built-in kinds and the official CRDs,
console.manifests.validate) and `todo-console preflight` (placeholders, the cluster spec, the budget, the
quotas, the bootstrap's order; it renders the overlay itself, so its findings show the overlay's own tags,
which none of its checks depends on). Apply is server-side apply, one object at a time in kustomize's order
(console.sources.kube_apply); a dry run sends the same requests with dryRun=All, so the API server's
admission and validation run and nothing is stored.

After the apply every Deployment of the overlay must roll out (kubectl's verdict, console.model.rollout)
within one shared deadline. When one does not, the release is withdrawn as a whole: every Deployment whose
pod template this apply changed (its revision moved) is rolled back to the revision it had before, as
`kubectl rollout undo --to-revision` does, and waited for. Only Deployments go back; the other objects the
apply changed (ConfigMaps, Subscriptions...) stay as applied, and a Deployment the apply created has no
revision to go back to: both are said in the result.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.manifests.render import KUSTOMIZE_DIR, ObjectRef, RenderError, overlay_dir, render_dir
from console.model.rollout import RolloutStatus
from console.runbooks.procedures import Outcome, ProcedureError
from console.runbooks.procedures.targets import cluster_target, repo_path
from console.sources.health import SourceError
from console.sources.workloads import Unknown, WaitOutcome, wait_for_rollout

TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # the registry's tag grammar
OUR_IMAGES = re.compile(r"^(?P<repository>(?:.+/)?todo-[a-z0-9-]+)(?::[^/@]+)?$")


@dataclass(frozen=True)
class Manifests:
    overlay: str
    tree: Path  # the kustomize directory rendered
    objects: list[dict[str, Any]]


def render(overlay: str, kustomize_dir: str = "", image_tag: str = "") -> Manifests:
    """The overlay rendered with real kustomize from `kustomize_dir` (default: this checkout's), every todo-*
    image at `image_tag` when one is given."""
    tree = repo_path(kustomize_dir) if kustomize_dir else KUSTOMIZE_DIR
    if image_tag and not TAG.match(image_tag):
        raise ProcedureError(f"image_tag {image_tag!r} is not an image tag (letters, digits, _ . -; at most 128)")
    try:
        objects = render_dir(overlay_dir(overlay, tree))
    except RenderError as exc:
        raise ProcedureError(str(exc)) from None
    if image_tag:
        objects = [with_image_tag(o, image_tag) for o in objects]
    return Manifests(overlay, tree, objects)


def with_image_tag(obj: dict[str, Any], tag: str) -> dict[str, Any]:
    """The object with every todo-* container image at `tag` (other images, e.g. daprd's, untouched)."""
    template = (obj.get("spec") or {}).get("template") or {}
    spec = template.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        match = OUR_IMAGES.match(str(container.get("image", "")))
        if match:
            container["image"] = f"{match['repository']}:{tag}"
    return obj


def object_rows(manifests: Manifests) -> list[tuple[str, int, str]]:
    """(kind, count, names) in kustomize's order: what the overlay contains."""
    counts = Counter(str(o.get("kind")) for o in manifests.objects)
    names: dict[str, list[str]] = {}
    for obj in manifests.objects:
        names.setdefault(str(obj.get("kind")), []).append(str((obj.get("metadata") or {}).get("name")))
    return [(kind, counts[kind], _shorten(", ".join(names[kind]))) for kind in names]


def image_rows(manifests: Manifests) -> list[tuple[str, str]]:
    return [(str(o["metadata"]["name"]), ", ".join(str(c.get("image")) for c in _containers(o)))
            for o in manifests.objects if o.get("kind") == "Deployment"]


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])


def _shorten(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


# --- validation ------------------------------------------------------------------------------------------


def schemas_outcome(manifests: Manifests) -> Outcome:
    """Every object validates strictly: built-in kinds against Kubernetes' schemas, custom resources against
    the official CRD schemas (CRD_SCHEMA_DIR)."""
    from console.manifests.crds import CrdError, schema_dir
    from console.manifests.validate import ManifestValidator

    name = "every object validates against its schema"
    try:
        validator = ManifestValidator(schema_dir(), kinds={str(o.get("kind")) for o in manifests.objects})
    except CrdError as exc:
        return Outcome(name, False, str(exc))
    problems = validator.validate_all(manifests.objects)
    if problems:
        shown = "; ".join(str(p) for p in problems[:3])
        return Outcome(name, False, f"{len(problems)} problems: {shown}" + (" ..." if len(problems) > 3 else ""))
    return Outcome(name, True, f"{len(manifests.objects)} objects")


def preflight_outcomes(manifests: Manifests, cluster_spec: str = "") -> list[Outcome]:
    """`todo-console preflight` of the overlay, one outcome per check (console.manifests.preflight)."""
    from console.manifests import bootstrap
    from console.manifests import budget as budget_model
    from console.manifests.cluster_spec import ClusterSpecError, load_cluster_spec
    from console.manifests.preflight import run_checks

    try:
        spec = load_cluster_spec(repo_path(cluster_spec) if cluster_spec else None)
        checks = run_checks(manifests.overlay, spec, kustomize_dir=manifests.tree)
    except (ClusterSpecError, RenderError, budget_model.BudgetError, bootstrap.BootstrapError, ValueError) as exc:
        raise ProcedureError(f"preflight: {exc}") from None
    return [Outcome(f"preflight: {c.name}", c.ok, _findings(c.findings)) for c in checks]


def _findings(findings: Sequence[str], shown: int = 3) -> str:
    """The first findings and how many more (`todo-console preflight` lists them all)."""
    if not findings:
        return ""
    more = f" (and {len(findings) - shown} more: todo-console preflight lists them)" if len(findings) > shown else ""
    return f"{len(findings)} findings: " + "; ".join(findings[:shown]) + more


# --- the cluster ----------------------------------------------------------------------------------------


class Cluster:
    """The cluster a deploy goes to: server-side apply, and the Deployments' rollouts (read and undone)."""

    def __init__(self, context: str, kubeconfig: str, request_timeout_s: float = 10.0) -> None:
        from console.sources.kube import KubeSource
        from console.sources.kube_apply import ServerSideApply

        target = cluster_target(context, kubeconfig)
        if target is None:
            raise ProcedureError("no cluster: no kubeconfig found (set `kubeconfig`, $KUBECONFIG or ~/.kube/config)")
        try:
            self.workloads = KubeSource(target)
        except SourceError as exc:
            raise ProcedureError(str(exc)) from None
        self.label = target.label
        self.address = self.workloads.address
        self.applier = ServerSideApply(self.workloads.api_client, timeout_s=request_timeout_s)

    def close(self) -> None:
        self.workloads.close()


def connect(context: str, kubeconfig: str, *, required: bool) -> Cluster | None:
    """The cluster, or None when none is configured and `required` is false (an offline dry run)."""
    if not required and cluster_target(context, kubeconfig) is None:
        return None
    return Cluster(context, kubeconfig)


def served_outcome(cluster: Cluster, manifests: Manifests) -> Outcome:
    """The cluster serves every kind of the overlay (its CRDs are installed: the bootstrap ran)."""
    name = "the cluster serves every kind of the overlay"
    try:
        missing = cluster.applier.unserved(manifests.objects)
    except SourceError as exc:
        return Outcome(name, False, str(exc))
    if missing:
        return Outcome(name, False, f"not served: {', '.join(missing)} (run the bootstrap-cluster runbook first)")
    return Outcome(name, True, f"{len({(o.get('apiVersion'), o.get('kind')) for o in manifests.objects})} kinds")


@dataclass(frozen=True)
class ApplyRun:
    """What an apply (or its dry run) did to each object, and the first object it could not apply."""

    applied: list[Any]  # console.sources.kube_apply.Applied
    error: str | None
    dry_run: bool
    seconds: float

    def counts(self) -> dict[str, int]:
        found = Counter(a.action for a in self.applied)
        return {action: found.get(action, 0) for action in ("created", "configured", "unchanged")}


def apply(cluster: Cluster, manifests: Manifests, *, dry_run: bool) -> ApplyRun:
    """Server-side apply of every object in order; stops at the first one the API server refuses."""
    began = time.monotonic()
    applied = []
    for obj in manifests.objects:
        try:
            applied.append(cluster.applier.apply(obj, dry_run=dry_run))
        except SourceError as exc:
            return ApplyRun(applied, f"{ObjectRef.of(obj)}: {exc.reason}", dry_run, time.monotonic() - began)
    return ApplyRun(applied, None, dry_run, time.monotonic() - began)


def apply_outcome(run: ApplyRun, total: int) -> Outcome:
    verb = "the API server accepts every object (dry run)" if run.dry_run else "every object was applied"
    if run.error is not None:
        return Outcome(verb, False, f"{len(run.applied)} of {total} applied, then {run.error}", run.seconds)
    counts = ", ".join(f"{n} {action}" for action, n in run.counts().items())
    return Outcome(verb, True, counts, run.seconds)


def apply_rows(run: ApplyRun) -> list[tuple[str, str, str]]:
    """The objects the apply created or changed (the unchanged ones are a count)."""
    return [(a.kind, f"{a.namespace}/{a.name}" if a.namespace else a.name, a.action)
            for a in run.applied if a.action != "unchanged"]


# --- rollouts and undo ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rollout:
    deployment: str
    status: RolloutStatus | None
    finished: bool  # complete or failed before the deadline
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status is not None and self.status.done


def _deployments(run: ApplyRun) -> list[Any]:
    return [a for a in run.applied if a.kind == "Deployment"]


def wait_for_rollouts(cluster: Cluster, run: ApplyRun, timeout_s: float,
                      generations: dict[str, int] | None = None) -> list[Rollout]:
    """Wait for each Deployment the apply touched, all within one deadline of `timeout_s` (they roll out
    side by side in the cluster; waiting on them in turn costs no more than the slowest)."""
    deadline = time.monotonic() + timeout_s
    wanted = generations or {a.name: a.generation for a in _deployments(run)}
    results = []
    for name, generation in wanted.items():
        try:
            outcome: WaitOutcome = wait_for_rollout(cluster.workloads, name, max(deadline - time.monotonic(), 0.0),
                                                    min_generation=generation)
        except (SourceError, Unknown) as exc:
            results.append(Rollout(name, None, False, str(exc)))
            continue
        results.append(Rollout(name, outcome.status, outcome.finished))
    return results


def rollouts_outcome(rollouts: Sequence[Rollout], timeout_s: float, name: str = "every Deployment rolled out"
                     ) -> Outcome:
    bad = [r for r in rollouts if not r.done]
    if not bad:
        return Outcome(name, True, f"{len(rollouts)} Deployments complete")
    reasons = "; ".join(r.error or (r.status.message if r.status is not None else "unknown") +
                        ("" if r.finished else f" (still waiting after {timeout_s:g}s)") for r in bad)
    return Outcome(name, False, f"{len(bad)} of {len(rollouts)} not rolled out: {reasons}")


def rollout_rows(rollouts: Sequence[Rollout]) -> list[tuple[object, ...]]:
    return [(r.deployment, r.status.state.value if r.status else "-",
             f"{r.status.ready}/{r.status.desired}" if r.status else "-",
             r.status.revision if r.status else "-", r.error or (r.status.message if r.status else ""))
            for r in rollouts]


def failed(rollouts: Sequence[Rollout]) -> bool:
    return any(not r.done for r in rollouts)


@dataclass(frozen=True)
class Undo:
    deployment: str
    from_revision: int | None
    to_revision: int | None
    generation: int | None
    detail: str


def undo_release(cluster: Cluster, run: ApplyRun, rollouts: Sequence[Rollout]) -> list[Undo]:
    """Roll every Deployment whose revision this apply moved back to the revision it had before."""
    now = {r.deployment: r.status.revision if r.status else None for r in rollouts}
    undone = []
    for applied in _deployments(run):
        before, after = applied.revision_before, now.get(applied.name)
        if before is None:
            undone.append(Undo(applied.name, after, None, None, "created by this deploy: no revision to go back to"))
            continue
        if after is None or after == before:
            undone.append(Undo(applied.name, after, None, None, f"still at revision {before}: nothing to undo"))
            continue
        try:
            result = cluster.workloads.undo(applied.name, before)
        except (SourceError, Unknown) as exc:
            undone.append(Undo(applied.name, after, before, None, f"undo refused: {exc}"))
            continue
        undone.append(Undo(applied.name, after, before, result.generation, result.plan.summary))
    return undone


def undo_outcome(undone: Sequence[Undo], rollouts: Sequence[Rollout], timeout_s: float) -> Outcome:
    """The undo was sent for every changed Deployment and each rolled back in time."""
    name = "the failed release was rolled back"
    refused = [u for u in undone if u.detail.startswith(("undo refused", "created by"))]
    bad = [r for r in rollouts if not r.done]
    if refused or bad:
        why = [f"{u.deployment}: {u.detail}" for u in refused]
        why += [f"{r.deployment}: {r.error or (r.status.message if r.status else 'unknown')}" +
                ("" if r.finished else f" (still waiting after {timeout_s:g}s)") for r in bad]
        return Outcome(name, False, "; ".join(why))
    back = [u for u in undone if u.generation is not None]
    return Outcome(name, True, f"{len(back)} Deployments back at their previous revision"
                               + (f" ({', '.join(f'{u.deployment} {u.to_revision}' for u in back)})" if back else ""))


def undo_generations(undone: Sequence[Undo]) -> dict[str, int]:
    """The Deployments an undo was sent to, with the generation their rollback must reach."""
    return {u.deployment: u.generation for u in undone if u.generation is not None}


def undo_rows(undone: Sequence[Undo]) -> list[tuple[object, ...]]:
    return [(u.deployment, u.from_revision, u.to_revision, u.detail) for u in undone]
