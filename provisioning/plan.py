"""Compare what should exist with what does: one step per resource, in the order apply runs them.

Pure: `make_plan(desired, observed)` needs no OCI. What exists is matched to what is wanted by the
`todo-platform-resource` tag alone, never by name, so renaming the cluster in the spec is a new
environment rather than a takeover of someone else's.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from provisioning.model import Desired, Kind, Lifecycle, Observed, Ref, resolve
from provisioning.resources import KIND_ORDER, MUTABLE, UPGRADE_ONLY


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    KEEP = "keep"
    REPLACE = "replace"  # it FAILED: delete it, then create it again
    DELETE = "delete"  # carries our tags but is not wanted (a duplicate, or a role the spec no longer has)
    BLOCKED = "blocked"  # differs where OCI cannot change it in place: refuse, say what to do


@dataclass(frozen=True)
class Change:
    attr: str
    before: Any
    after: Any

    def summary(self) -> str:
        if isinstance(self.before, frozenset) and isinstance(self.after, frozenset):
            added, removed = len(self.after - self.before), len(self.before - self.after)
            return f"{self.attr}: +{added} -{removed}"
        return f"{self.attr}: {_short(self.before)} -> {_short(self.after)}"


@dataclass(frozen=True)
class Step:
    action: Action
    key: str
    kind: Kind
    name: str
    id: str | None = None  # the existing resource (none for a create)
    state: str | None = None  # its OCI lifecycle state
    changes: tuple[Change, ...] = ()
    reason: str = ""
    desired: Desired | None = None
    # Resources that must be gone before this step may run (an old copy still terminating).
    wait_for: tuple[str, ...] = ()
    # The resource is mid-change (PROVISIONING, CREATING, UPDATING): apply waits for it to settle first.
    pending: bool = False

    def detail(self) -> str:
        if self.reason:
            return self.reason
        if self.changes:
            return "; ".join(change.summary() for change in self.changes)
        if self.desired and self.action is Action.CREATE:
            return _create_detail(self.desired)
        return self.state or ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "key": self.key,
            "kind": self.kind.value,
            "name": self.name,
            "id": self.id,
            "state": self.state,
            "changes": [{"attr": c.attr, "before": plain(c.before), "after": plain(c.after)} for c in self.changes],
            "reason": self.reason or None,
            "wait_for": list(self.wait_for),
        }


@dataclass(frozen=True)
class Plan:
    cluster: str
    steps: tuple[Step, ...]
    # OCIDs of the resources that exist and are kept (updated or not), by key.
    ids: Mapping[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((a.value for a in Action), 0)
        for step in self.steps:
            counts[step.action.value] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(step.action is not Action.KEEP for step in self.steps)

    @property
    def blocked(self) -> list[Step]:
        return [step for step in self.steps if step.action is Action.BLOCKED]

    def creates(self) -> list[Desired]:
        """What apply will make anew (creates and replacements): what the preflight budgets for."""
        return [s.desired for s in self.steps if s.action in (Action.CREATE, Action.REPLACE) and s.desired]

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "counts": self.counts(), "in_sync": not self.has_changes,
                "steps": [step.to_dict() for step in self.steps]}


_PREFERENCE = {Lifecycle.READY: 0, Lifecycle.PENDING: 1, Lifecycle.FAILED: 2}


def make_plan(cluster: str, desired: Iterable[Desired], observed: Iterable[Observed]) -> Plan:
    wanted, observed = list(desired), list(observed)
    by_key: dict[str, list[Observed]] = defaultdict(list)
    for item in observed:
        if item.lifecycle is not Lifecycle.GONE:
            by_key[item.key].append(item)

    keepers: dict[str, Observed] = {}
    extras: list[Observed] = []
    for want in wanted:
        tagged = by_key.pop(want.key, [])
        # A resource tagged with this key but of another kind is not this resource: it goes.
        extras.extend(o for o in tagged if o.kind is not want.kind and o.lifecycle is not Lifecycle.DELETING)
        live = sorted((o for o in tagged if o.kind is want.kind and o.lifecycle is not Lifecycle.DELETING),
                      key=lambda o: (_PREFERENCE[o.lifecycle], o.created, o.id))
        if live:
            keepers[want.key] = live[0]
            extras.extend(live[1:])
    for leftovers in by_key.values():
        extras.extend(o for o in leftovers if o.lifecycle is not Lifecycle.DELETING)

    ids = {key: o.id for key, o in keepers.items() if o.lifecycle is not Lifecycle.FAILED}
    deleting = [o for o in observed if o.lifecycle is Lifecycle.DELETING]
    steps = [_step(want, keepers.get(want.key), ids, tuple(o.id for o in deleting if o.key == want.key))
             for want in wanted]
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    for extra in sorted(extras, key=lambda o: -rank[o.kind]):
        why = "a duplicate" if extra.key in {w.key for w in wanted} else "not in the spec"
        steps.append(Step(Action.DELETE, extra.key or "?", extra.kind, extra.name, extra.id, extra.state,
                          reason=f"carries this cluster's tags but is {why}"))
    return Plan(cluster, tuple(steps), ids)


def _step(want: Desired, have: Observed | None, ids: Mapping[str, str], deleting: tuple[str, ...]) -> Step:
    if have is None:
        reason = "the previous one is still being deleted: apply waits for it" if deleting else ""
        return Step(Action.CREATE, want.key, want.kind, want.name, desired=want, wait_for=deleting, reason=reason)
    base = Step(Action.KEEP, want.key, want.kind, have.name, have.id, have.state, desired=want,
                pending=have.lifecycle is Lifecycle.PENDING)
    if have.lifecycle is Lifecycle.FAILED:
        return dataclasses.replace(base, action=Action.REPLACE,
                                   reason=f"it is {have.state}: delete it and create it again")
    target = {attr: resolve(value, ids) for attr, value in want.attrs.items()}
    changes = tuple(Change(attr, have.attrs.get(attr), value) for attr, value in target.items()
                    if have.attrs.get(attr) != value)
    if not changes:
        waiting = f"{have.state}: apply waits for it" if have.lifecycle is Lifecycle.PENDING else ""
        return dataclasses.replace(base, reason=waiting)
    refusals = [r for r in (_refusal(want.kind, c) for c in changes) if r]
    if refusals:
        return dataclasses.replace(base, action=Action.BLOCKED, changes=changes, reason="; ".join(refusals))
    return dataclasses.replace(base, action=Action.UPDATE, changes=changes)


def _refusal(kind: Kind, change: Change) -> str:
    if change.attr not in MUTABLE[kind]:
        return (f"{change.attr} cannot change in place ({_short(change.before)} -> {_short(change.after)}): "
                f"destroy and apply again, or change the spec back")
    if (kind, change.attr) in UPGRADE_ONLY:
        order = UPGRADE_ONLY[(kind, change.attr)]
        if order is None and _version(change.after) < _version(change.before):
            return f"{change.attr}: OKE cannot downgrade {change.before} to {change.after}"
        if order is not None and order.index(change.after) < order.index(change.before):
            return f"{change.attr}: OKE cannot change {change.before} back to {change.after}"
    return ""


def _version(text: Any) -> tuple[int, ...]:
    return tuple(int(part) for part in str(text).lstrip("v").split(".") if part.isdigit())


def _create_detail(want: Desired) -> str:
    attrs = want.attrs
    for attr in ("cidr_blocks", "cidr_block"):
        if attr in attrs:
            value = attrs[attr]
            return ", ".join(value) if isinstance(value, tuple) else str(value)
    if want.kind is Kind.CLUSTER:
        return f"{attrs['type']} {attrs['kubernetes_version']} {attrs['cni']}"
    if want.kind is Kind.NODE_POOL:
        return (f"{attrs['size']} x {attrs['node_shape']} {attrs['ocpus']:g} OCPU / {attrs['memory_in_gbs']:g} GB, "
                f"{attrs['boot_volume_size_in_gbs']} GB boot")
    for attr in ("security_rules", "route_rules"):
        if attr in attrs:
            return f"{len(attrs[attr])} {attr.replace('_', ' ')}"
    return ""


def destroy_plan(cluster: str, observed: Iterable[Observed], foreign_load_balancers: Iterable[Observed] = ()) -> Plan:
    """Everything carrying this cluster's tags, deleted in reverse dependency order.

    A load balancer in this cluster's subnets without its tags (made by a Service before the ingress
    controller tagged its load balancers, or by hand) blocks the subnet's deletion and is not ours to
    delete: the plan is blocked until it is gone, so destroy stops before deleting anything.
    """
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    live = sorted((o for o in observed if o.lifecycle is not Lifecycle.GONE), key=lambda o: (-rank[o.kind], o.key))
    steps = [Step(Action.DELETE, o.key or "?", o.kind, o.name, o.id, o.state) for o in live]
    steps += [Step(Action.BLOCKED, "load-balancer", lb.kind, lb.name, lb.id, lb.state,
                   reason="a load balancer in this cluster's subnets without its tags: delete the LoadBalancer "
                          "Service that made it (or the load balancer), then destroy again")
              for lb in foreign_load_balancers]
    return Plan(cluster, tuple(steps))


def plain(value: Any) -> Any:
    """JSON-ready form of an attribute value (sets sorted, so the output is stable)."""
    if isinstance(value, Ref):
        return {"ref": value.key}
    if isinstance(value, frozenset):
        return sorted((plain(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _short(value: Any) -> str:
    text = json.dumps(plain(value)) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def format_plan(plan: Plan) -> str:
    """The table `provision plan` prints."""
    rows = [("ACTION", "RESOURCE", "KIND", "NAME", "DETAIL")]
    for step in plan.steps:
        rows.append((step.action.value, step.key, step.kind.label, step.name, step.detail()))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4] for row in rows]
    counts = plan.counts()
    summary = (f"Plan for {plan.cluster}: {counts['create']} to create, {counts['update']} to update, "
               f"{counts['replace']} to replace, {counts['delete']} to delete, {counts['keep']} unchanged")
    if counts["blocked"]:
        summary += f", {counts['blocked']} BLOCKED (apply refuses until fixed)"
    lines.append(summary + ("." if plan.has_changes else ": the environment matches the spec."))
    return "\n".join(line.rstrip() for line in lines)
