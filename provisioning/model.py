"""The data the planner works on: what should exist (`Desired`) and what does (`Observed`).

No OCI types here: the OCI client turns SDK models into `Observed` and `Desired` into SDK request models,
so the plan, the preflight and their tests never touch the SDK. Attribute values are plain, comparable
Python values (str, int, float, bool, None, tuples, frozensets, frozen dataclasses); a `Ref` stands for
another resource's OCID until it is known.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Freeform tags on everything this tool creates. It keeps no state file: it finds what it owns by
# compartment and these tags, every time.
TAG_CLUSTER = "todo-platform-cluster"
TAG_RESOURCE = "todo-platform-resource"


class Kind(StrEnum):
    VCN = "vcn"
    INTERNET_GATEWAY = "internet_gateway"
    NAT_GATEWAY = "nat_gateway"
    SERVICE_GATEWAY = "service_gateway"
    ROUTE_TABLE = "route_table"
    SECURITY_LIST = "security_list"
    SUBNET = "subnet"
    CLUSTER = "cluster"
    NODE_POOL = "node_pool"
    # Created by OKE's cloud controller for a LoadBalancer Service, not by this tool; destroy removes the
    # ones carrying this cluster's tags (see provisioning/README.md).
    LOAD_BALANCER = "load_balancer"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class Lifecycle(StrEnum):
    """OCI's many lifecycle states, folded into what the planner needs to know."""

    READY = "ready"  # AVAILABLE, ACTIVE (and node pools NEEDS_ATTENTION/INACTIVE: they exist and can be updated)
    PENDING = "pending"  # PROVISIONING, CREATING, UPDATING: wait for it
    DELETING = "deleting"  # TERMINATING, DELETING: wait until it is gone
    FAILED = "failed"  # FAILED: must be deleted and created again
    GONE = "gone"  # TERMINATED, DELETED


@dataclass(frozen=True)
class Ref:
    """The OCID of the resource with this key, once it exists."""

    key: str


@dataclass(frozen=True)
class Desired:
    key: str
    kind: Kind
    name: str
    attrs: Mapping[str, Any]

    def refs(self) -> set[str]:
        return _refs_in(tuple(self.attrs.values()))


@dataclass(frozen=True)
class Observed:
    key: str  # the TAG_RESOURCE value ("" when the tag is missing)
    kind: Kind
    id: str
    name: str
    lifecycle: Lifecycle
    state: str  # OCI's own lifecycle state, for display
    attrs: Mapping[str, Any] = field(default_factory=dict)
    created: str = ""  # ISO 8601; the oldest of duplicates is kept


def tags(cluster: str, key: str) -> dict[str, str]:
    return {TAG_CLUSTER: cluster, TAG_RESOURCE: key}


def resolve(value: Any, ids: Mapping[str, str]) -> Any:
    """`value` with every Ref replaced by its OCID (None while the resource does not exist)."""
    if isinstance(value, Ref):
        return ids.get(value.key)
    if isinstance(value, tuple):
        return tuple(resolve(item, ids) for item in value)
    if isinstance(value, frozenset):
        return frozenset(resolve(item, ids) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: resolve(getattr(value, f.name), ids) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


def _refs_in(value: Any) -> set[str]:
    if isinstance(value, Ref):
        return {value.key}
    if isinstance(value, tuple | frozenset):
        return set().union(*(_refs_in(item) for item in value)) if value else set()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _refs_in(tuple(getattr(value, f.name) for f in dataclasses.fields(value)))
    return set()
