"""Before anything is created: ask the tenancy what it really allows, and stop where the plan cannot fit.

The Always Free check in the spec is what Oracle promises; the Limits service is what this tenancy has.
They differ: accounts on the Free Tier alone have been refused OKE clusters and NAT gateways (their limits
are 0), and whatever already runs in the tenancy uses up the same allowance. Only what the plan will
*create* is counted, so a preflight on a complete environment needs nothing.

`requirements()` and `evaluate()` are pure; `run_preflight()` asks OCI through the client.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from provisioning.model import Desired, Kind
from provisioning.plan import Action, Plan
from provisioning.spec import ClusterSpec

Scope = Literal["region", "ad", "vcn"]

# Limits on which accounts without a paid upgrade have been seen at 0.
_FREE_TIER_REFUSALS = {
    ("container-engine", "cluster-count"): "OKE clusters",
    ("vcn", "nat-gateway-count"): "NAT gateways",
    ("vcn", "service-gateway-count"): "service gateways",
}


@dataclass(frozen=True)
class Requirement:
    service: str
    limit: str
    scope: Scope  # "vcn": a per-VCN limit; a new VCN starts empty, so only the limit value matters
    need: int  # in all (for "ad": the sum of per_ad)
    what: str
    per_ad: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    ok: bool
    message: str
    requirement: Requirement | None = None
    limit: int | None = None
    available: int | None = None

    def to_dict(self) -> dict[str, Any]:
        req = self.requirement
        return {"ok": self.ok, "message": self.message,
                "service": req.service if req else None, "limit_name": req.limit if req else None,
                "need": req.need if req else None, "limit": self.limit, "available": self.available}


@dataclass(frozen=True)
class PreflightReport:
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return all(finding.ok for finding in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [finding.to_dict() for finding in self.findings]}


def shape_limits(shape: str) -> tuple[str, str]:
    """Compute limit names of a flexible shape: VM.Standard.A1.Flex -> standard-a1-core-count, -memory-count."""
    series = shape.split(".")[2].lower()
    return f"standard-{series}-core-count", f"standard-{series}-memory-count"


def spread(count: int, domains: list[str]) -> dict[str, int]:
    """How OKE spreads a pool's nodes over its placement ADs: round robin."""
    base, extra = divmod(count, len(domains))
    return {ad: base + (1 if i < extra else 0) for i, ad in enumerate(domains)}


def requirements(spec: ClusterSpec, plan: Plan, domains: list[str]) -> list[Requirement]:
    """What the plan's creates (and a node pool growing) take from the tenancy's limits."""
    made = {desired.kind for desired in plan.creates()}
    reqs: list[Requirement] = []
    if Kind.VCN in made:
        reqs.append(Requirement("vcn", "vcn-count", "region", 1, "1 VCN"))
    for kind, limit, what in ((Kind.INTERNET_GATEWAY, "internet-gateway-count", "internet gateway"),
                              (Kind.NAT_GATEWAY, "nat-gateway-count", "NAT gateway"),
                              (Kind.SERVICE_GATEWAY, "service-gateway-count", "service gateway")):
        if kind in made:
            reqs.append(Requirement("vcn", limit, "vcn", 1, f"1 {what} in the VCN"))
    if Kind.CLUSTER in made:
        reqs.append(Requirement("container-engine", "cluster-count", "region", 1, f"1 {spec.cluster.type} cluster"))
        lbs = spec.load_balancer
        if lbs.count:
            reqs.append(Requirement("load-balancer", "lb-flexible-count", "region", lbs.count,
                                    f"{lbs.count} flexible load balancer for the ingress controller"))
            reqs.append(Requirement("load-balancer", "lb-flexible-bandwidth-sum", "region",
                                    lbs.count * lbs.bandwidth_mbps, f"{lbs.bandwidth_mbps} Mbps each"))
    nodes = _new_nodes(spec, plan)
    if nodes:
        pool = spec.node_pool
        per_ad = spread(nodes, domains)
        cores, memory = shape_limits(pool.shape)
        for limit, amount, unit in ((cores, pool.ocpus_per_node, "OCPU"), (memory, pool.memory_gb_per_node, "GB"),
                                    ("total-storage-gb", max(pool.boot_volume_gb, 50), "GB of boot volume")):
            service = "block-storage" if limit == "total-storage-gb" else "compute"
            need = {ad: math.ceil(n * amount) for ad, n in per_ad.items() if n}
            reqs.append(Requirement(service, limit, "ad", sum(need.values()),
                                    f"{nodes} nodes x {amount:g} {unit}", need))
    return reqs


def _new_nodes(spec: ClusterSpec, plan: Plan) -> int:
    for step in plan.steps:
        if step.kind is not Kind.NODE_POOL or step.key != "node-pool":
            continue
        if step.action in (Action.CREATE, Action.REPLACE):
            return spec.node_pool.size
        if step.action is Action.UPDATE:
            before = next((c.before for c in step.changes if c.attr == "size"), spec.node_pool.size)
            return max(0, spec.node_pool.size - int(before or 0))
    return 0


def evaluate(req: Requirement, values: Mapping[str | None, int],
             available: Mapping[str | None, tuple[int, int] | None]) -> Finding:
    """One requirement against the limit values (by AD, None for regional) and what is available (None
    where OCI does not report availability: then only the limit itself can be checked)."""
    name = f"{req.service}/{req.limit}"
    total = sum(values.values()) if values else None
    if not values or total == 0:
        refused = _FREE_TIER_REFUSALS.get((req.service, req.limit))
        why = (f"; accounts on the Free Tier alone have been refused {refused}: upgrade the account to Pay As You Go "
               f"(Always Free resources stay free) or ask Oracle for a limit increase") if refused else \
            "; ask Oracle for a limit increase"
        return Finding(False, f"{name} is {total or 0} in this tenancy, the plan needs {req.need} ({req.what}){why}",
                       req, total or 0, 0)
    if req.scope == "vcn" or any(v is None for v in available.values()):
        ok = min(values.values()) >= req.need
        per = "per VCN" if req.scope == "vcn" else "(OCI does not report what is in use)"
        return Finding(ok, f"{name}: limit {min(values.values())} {per}, the plan needs {req.need} ({req.what})",
                       req, min(values.values()), None)
    free_in = {ad: (available.get(ad) or (0, 0))[0] for ad in available}
    if req.scope == "ad" and None not in values:
        short = [f"{ad}: needs {n}, {free_in.get(ad, 0)} available (limit {values.get(ad, 0)})"
                 for ad, n in req.per_ad.items() if free_in.get(ad, 0) < n]
        free = sum(free_in.get(ad, 0) for ad in req.per_ad)
        if short:
            return Finding(False, f"{name}: {'; '.join(short)} ({req.what})", req, total, free)
        return Finding(True, f"{name}: needs {req.need}, {free} available ({req.what})", req, total, free)
    free, used = available.get(None) or (0, 0)
    ok = free >= req.need
    message = f"{name}: needs {req.need}, {free} available (limit {total}, {used} used) ({req.what})"
    return Finding(ok, message, req, total, free)


class LimitsSource(Protocol):
    @property
    def availability_domains(self) -> list[str]: ...

    def limit_values(self, service: str, limit: str) -> dict[str | None, int]: ...

    def availability(self, service: str, limit: str, availability_domain: str | None) -> tuple[int, int] | None: ...

    def kubernetes_versions(self) -> list[str]: ...

    def node_image(self, kubernetes_version: str, arch: str) -> str:
        """The image OCID; raises LookupError when OKE offers none."""


def run_preflight(source: LimitsSource, spec: ClusterSpec, plan: Plan) -> PreflightReport:
    """Ask the tenancy about everything the plan will create; read-only."""
    findings = list(_options(source, spec, plan))
    for req in requirements(spec, plan, source.availability_domains):
        values = source.limit_values(req.service, req.limit)
        available: dict[str | None, tuple[int, int] | None] = {}
        if values and sum(values.values()) and req.scope != "vcn":
            if req.scope == "ad" and None not in values:
                for ad in req.per_ad:
                    available[ad] = source.availability(req.service, req.limit, ad)
            else:
                available[None] = source.availability(req.service, req.limit, None)
        findings.append(evaluate(req, values, available))
    if not findings:
        findings.append(Finding(True, "nothing to create: the environment already has everything the spec asks for"))
    return PreflightReport(findings)


def _options(source: LimitsSource, spec: ClusterSpec, plan: Plan) -> Iterable[Finding]:
    """The Kubernetes version and a node image for it, if the plan creates or upgrades with them."""
    wants_version = any(s.action in (Action.CREATE, Action.REPLACE, Action.UPDATE) and s.kind in
                        (Kind.CLUSTER, Kind.NODE_POOL) for s in plan.steps)
    if not wants_version:
        return
    version = spec.cluster.kubernetes_version
    offered = source.kubernetes_versions()
    if version not in offered:
        yield Finding(False, f"Kubernetes {version} is not offered by OKE in {spec.region} "
                             f"(offered: {', '.join(offered) or 'none'}): change cluster.kubernetes_version")
        return
    yield Finding(True, f"Kubernetes {version} is offered by OKE in {spec.region}")
    if spec.node_pool.image_id is None and _creates(plan, Kind.NODE_POOL):
        try:
            image = source.node_image(version, spec.node_pool.arch)
        except LookupError as exc:
            yield Finding(False, str(exc))
            return
        yield Finding(True, f"node image for {version} on {spec.node_pool.arch}: {image}")


def _creates(plan: Plan, kind: Kind) -> list[Desired]:
    return [desired for desired in plan.creates() if desired.kind is kind]


def format_report(report: PreflightReport) -> str:
    lines = [("ok    " if f.ok else "FAIL  ") + f.message for f in report.findings]
    failed = sum(1 for f in report.findings if not f.ok)
    verdict = "Preflight passed: the tenancy allows what the plan creates." if report.ok else \
        f"Preflight failed ({failed} of {len(report.findings)} checks): nothing was created."
    return "\n".join([*lines, verdict])
