"""Provision OKE as a runbook: the provisioning library's preflight, plan and apply, as tables and checks.

Nothing here talks to OCI itself: `provisioning/` does (provisioning/README.md). This module opens it the way
`todo-console provision` does, turns its plan and preflight into rows a person reads, and states what each
step established. Apply is refused, as by the CLI, when the plan is blocked or the preflight failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from console.runbooks.procedures import Outcome, ProcedureError
from provisioning import DEFAULT_SPEC

if TYPE_CHECKING:
    from provisioning.oci_client import OciClient
    from provisioning.plan import Plan
    from provisioning.preflight import PreflightReport
    from provisioning.spec import ClusterSpec

Say = Callable[[str], None]


@dataclass
class Provisioning:
    spec_path: Path
    spec: ClusterSpec
    client: OciClient


def connect(cluster_spec: str, oci_profile: str, say: Say = print) -> Provisioning:
    """The spec (default: the Always Free example) and an OCI client for it; bad input is one line."""
    from pydantic import ValidationError

    from provisioning.oci_client import OciClient, OciConfigError
    from provisioning.settings import ProvisionSettings
    from provisioning.spec import SpecError, load_cluster_spec

    path = Path(cluster_spec).expanduser() if cluster_spec else DEFAULT_SPEC
    try:
        spec = load_cluster_spec(path)
        settings = ProvisionSettings(oci_profile=oci_profile) if oci_profile else ProvisionSettings()
        return Provisioning(path, spec, OciClient(spec, settings, report=say))
    except SpecError as exc:
        raise ProcedureError(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ProcedureError(f"TODO_PROVISION_{'_'.join(str(p) for p in first['loc']).upper()}: {first['msg']}") from None
    except OciConfigError as exc:
        raise ProcedureError(str(exc)) from None


def spec_rows(p: Provisioning) -> list[tuple[str, object]]:
    spec = p.spec
    pool = spec.node_pool
    return [
        ("spec", p.spec_path), ("cluster", spec.name), ("region", spec.region),
        ("compartment", spec.compartment_id),
        ("Kubernetes", f"{spec.cluster.kubernetes_version} ({spec.cluster.type}, {spec.cluster.cni})"),
        ("nodes", f"{pool.size} x {pool.shape} {pool.ocpus_per_node:g} OCPU / {pool.memory_gb_per_node:g} GB, "
                  f"{pool.boot_volume_gb} GB boot"),
        ("Always Free", "enforced" if spec.always_free else "not enforced"),
    ]


def current_plan(p: Provisioning) -> Plan:
    """What exists (found by the provisioning's tags) against what the spec asks for."""
    from provisioning.plan import make_plan
    from provisioning.resources import desired_resources

    return make_plan(p.spec.name, desired_resources(p.spec), p.client.discover().observed)


def plan_rows(plan: Plan) -> list[tuple[str, str, str, str, str]]:
    return [(s.action.value, s.key, s.kind.label, s.name, s.detail()) for s in plan.steps]


def plan_outcome(plan: Plan) -> Outcome:
    counts = plan.counts()
    summary = ", ".join(f"{n} to {a}" for a, n in counts.items() if n and a not in ("keep", "blocked"))
    summary = summary or "nothing to change"
    if plan.blocked:
        reasons = "; ".join(f"{s.key}: {s.reason}" for s in plan.blocked)
        return Outcome("apply can carry out the plan", False, f"{len(plan.blocked)} blocked: {reasons}")
    return Outcome("apply can carry out the plan", True, f"{summary}, {counts['keep']} unchanged")


def preflight(p: Provisioning, plan: Plan) -> PreflightReport:
    from provisioning.preflight import run_preflight

    return run_preflight(p.client, p.spec, plan)


def preflight_rows(report: PreflightReport) -> list[tuple[str, str]]:
    return [("ok" if f.ok else "FAIL", f.message) for f in report.findings]


def preflight_outcome(report: PreflightReport) -> Outcome:
    failed = [f for f in report.findings if not f.ok]
    if failed:
        return Outcome("the tenancy allows what the plan creates", False,
                       f"{len(failed)} of {len(report.findings)} checks failed: {failed[0].message}")
    return Outcome("the tenancy allows what the plan creates", True, f"{len(report.findings)} checks passed")


def apply(p: Provisioning, plan: Plan, report: PreflightReport | None, say: Say = print) -> Outcome:
    """Carry out the plan (creates and updates wait for OCI), refusing as the CLI does."""
    from provisioning.apply import apply_plan

    name = "apply made every change"
    if plan.blocked:
        return Outcome(name, False, "not applied: the plan is blocked")
    if report is not None and not report.ok:
        return Outcome(name, False, "not applied: the preflight failed, nothing was created")
    if not plan.has_changes:
        return Outcome(name, True, "nothing to change", 0.0)
    outcome = apply_plan(plan, p.client, report=say)
    return Outcome(name, True, f"{len(outcome.done)} changes in {outcome.seconds:.0f}s", outcome.seconds)


def in_sync_outcome(after: Plan) -> Outcome:
    if after.has_changes:
        rest = ", ".join(f"{s.action.value} {s.key}" for s in after.steps if s.action.value != "keep")
        return Outcome("the environment matches the spec", False, f"still to change: {rest}")
    return Outcome("the environment matches the spec", True, f"{len(after.steps)} resources, all unchanged")
