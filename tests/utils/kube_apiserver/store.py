"""The stand-in's etcd: objects by resource type, one resourceVersion counter, and a bounded change log.

Every write takes the next resourceVersion (as etcd's revision does, shared by all kinds), stamps it on
the object and appends a change to the log that watches replay from. The log is bounded, and `compact()`
drops it, so a watch from an old resourceVersion gets the real server's 410 Gone. Objects also carry the
server-owned metadata a client sees on a real cluster (uid, creationTimestamp, generation,
managedFields), so a client's cache has to cope with them as it would in production.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.utils.kube_apiserver.resources import ResourceType, resource_for

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


def clone(obj: Any) -> Any:
    """A deep copy of a JSON document (several times faster than copy.deepcopy for API objects)."""
    return json.loads(json.dumps(obj))


class Clock:
    """Wall time plus an offset tests can advance (a progress deadline passes without waiting 10 min)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def stamp(self, at: float | None = None) -> str:
        return stamp(self.now() if at is None else at)


def stamp(epoch: float) -> str:
    """Epoch seconds as the API server writes times (RFC 3339, UTC, whole seconds)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Change:
    rv: int
    resource: ResourceType
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Conflict(Exception):
    """Optimistic concurrency failed: the object changed since the resourceVersion the writer saw."""


class Store:
    def __init__(self, clock: Clock | None = None, *, history: int = 20000, start_rv: int = 1000) -> None:
        self.clock = clock or Clock()
        self.cond = threading.Condition(threading.RLock())
        self.rv = start_rv
        self.oldest_rv = start_rv  # the log holds every change with rv > oldest_rv
        self._history = history
        self._objects: dict[ResourceType, dict[Key, dict[str, Any]]] = {}
        self._changes: list[Change] = []
        self._change_rvs: list[int] = []
        self._snapshots: OrderedDict[str, list[bytes]] = OrderedDict()
        self._owned: dict[str, dict[tuple[ResourceType, Key], None]] = {}  # controller uid -> what it owns

    # --- writes ----------------------------------------------------------------------------------------

    def create(self, obj: dict[str, Any], *, manager: str = "kubectl-client-side-apply",
               managed: dict[str, Any] | None = None, adopt: bool = False) -> dict[str, Any]:
        """Store a new object. With `adopt`, the caller hands `obj` over (it is stored, not copied) and gets
        the stored object back, read-only: the fast path for objects built just to be stored."""
        resource = resource_for(obj)
        obj = obj if adopt else clone(obj)
        meta = obj.setdefault("metadata", {})
        if not resource.namespaced:
            meta.pop("namespace", None)
        with self.cond:
            key = (meta.get("namespace", ""), meta["name"])
            if key in self._objects.get(resource, {}):
                raise Conflict(f'{resource.group_resource} "{meta["name"]}" already exists')
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", self.clock.stamp())
            meta["generation"] = 1
            meta["managedFields"] = [managed or managed_fields(obj, manager, self.clock.stamp())]
            stored = self._write(resource, key, obj, None)
            return stored if adopt else clone(stored)

    def update(self, obj: dict[str, Any], *, expect_rv: str | None = None, manager: str | None = None) -> dict[str, Any]:
        """Replace an object; a changed spec bumps metadata.generation, as the API server does."""
        resource = resource_for(obj)
        obj = clone(obj)
        meta = obj["metadata"]
        with self.cond:
            key = (meta.get("namespace", "") if resource.namespaced else "", meta["name"])
            old = self._objects.get(resource, {}).get(key)
            if old is None:
                raise KeyError(key)
            if expect_rv is not None and expect_rv != old["metadata"]["resourceVersion"]:
                raise Conflict(f'Operation cannot be fulfilled on {resource.group_resource} "{meta["name"]}": '
                               "the object has been modified; please apply your changes to the latest version "
                               "and try again")
            for server_owned in ("uid", "creationTimestamp"):
                meta[server_owned] = old["metadata"][server_owned]
            meta["generation"] = old["metadata"].get("generation", 1) + (1 if _spec(obj) != _spec(old) else 0)
            if manager:
                meta["managedFields"] = [*(old["metadata"].get("managedFields") or [])[:2],
                                         managed_fields(obj, manager, self.clock.stamp())]
            if obj == old:
                return clone(old)
            return clone(self._write(resource, key, obj, old))

    def mutate(self, resource: ResourceType, namespace: str, name: str, change: Callable[[dict[str, Any]], None],
               *, manager: str | None = None) -> dict[str, Any]:
        """Read-modify-write under the lock (how the simulated controllers write status)."""
        with self.cond:
            current = self.get(resource, namespace, name)
            if current is None:
                raise KeyError((namespace, name))
            change(current)
            return self.update(current, manager=manager)

    def delete(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self.cond:
            key = (namespace if resource.namespaced else "", name)
            old = self._objects.get(resource, {}).pop(key, None)
            if old is None:
                raise KeyError(key)
            gone = clone(old)
            self.rv += 1
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self._owned.get(_controller(old) or "", {}).pop((resource, key), None)
            self._log(Change(self.rv, resource, "DELETED", gone, old))
            return clone(gone)

    def _write(self, resource: ResourceType, key: Key, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._objects.setdefault(resource, {})[key] = obj
        if old is not None and _controller(old) != _controller(obj):
            self._owned.get(_controller(old) or "", {}).pop((resource, key), None)
        if _controller(obj):
            self._owned.setdefault(_controller(obj) or "", {})[(resource, key)] = None
        self._log(Change(self.rv, resource, "ADDED" if old is None else "MODIFIED", obj, old))
        return obj

    def _log(self, change: Change) -> None:
        self._changes.append(change)
        self._change_rvs.append(change.rv)
        if len(self._changes) > self._history:
            drop = len(self._changes) - self._history
            self.oldest_rv = self._change_rvs[drop - 1]
            del self._changes[:drop]
            del self._change_rvs[:drop]
        self.cond.notify_all()

    def compact(self) -> None:
        """Forget the change log, as etcd compaction does: watches from before now get 410 Gone."""
        with self.cond:
            self._changes.clear()
            self._change_rvs.clear()
            self.oldest_rv = self.rv
            self._snapshots.clear()

    # --- reads -----------------------------------------------------------------------------------------

    def get(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        with self.cond:
            obj = self._objects.get(resource, {}).get((namespace if resource.namespaced else "", name))
            return clone(obj) if obj is not None else None

    def items(self, resource: ResourceType, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Live objects, sorted by key as etcd lists them; hold `cond` while iterating. A stored object is
        never changed in place (a write stores a new dict), so readers may keep these but not mutate them."""
        objects = self._objects.get(resource, {})
        for key in sorted(objects):
            if namespace is None or key[0] == namespace:
                yield objects[key]

    def owned_by(self, resource: ResourceType, uid: str) -> list[dict[str, Any]]:
        """The live objects of one type whose controller ownerReference is `uid` (read-only, see `items`)."""
        with self.cond:
            objects = self._objects.get(resource, {})
            return [objects[key] for r, key in sorted(self._owned.get(uid, {}), key=lambda rk: rk[1])
                    if r == resource and key in objects]

    def snapshot(self, resource: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        """The live objects of one type (read-only, see `items`)."""
        with self.cond:
            return list(self.items(resource, namespace))

    def all_objects(self) -> list[dict[str, Any]]:
        with self.cond:
            return [clone(o) for objs in self._objects.values() for o in objs.values()]

    def changes_after(self, rv: int) -> list[Change]:
        with self.cond:
            start = bisect.bisect_right(self._change_rvs, rv)
            return self._changes[start:]

    def too_old(self, rv: int) -> bool:
        return rv < self.oldest_rv

    # --- consistent list pages (limit/continue) --------------------------------------------------------

    def remember_snapshot(self, token: str, rest: list[bytes]) -> None:
        with self.cond:
            self._snapshots[token] = rest
            while len(self._snapshots) > 32:
                self._snapshots.popitem(last=False)

    def take_snapshot(self, token: str) -> list[bytes] | None:
        with self.cond:
            return self._snapshots.pop(token, None)


def _controller(obj: dict[str, Any]) -> str | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("controller")), None)


def _spec(obj: dict[str, Any]) -> Any:
    """Everything a generation counts: all but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def managed_fields(obj: dict[str, Any], manager: str, at: str) -> dict[str, Any]:
    """A managedFields entry shaped like the server's (FieldsV1 of the keys the manager set)."""
    def skeleton(node: Any, depth: int = 0) -> Any:
        if depth > 5:  # deep enough to weigh what the server's entries weigh
            return {}
        if isinstance(node, dict):
            return {f"f:{k}": skeleton(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return {f"k:{json.dumps(item.get('name'))}" if isinstance(item, dict) and "name" in item
                    else f"v:{json.dumps(item) if not isinstance(item, dict | list) else i}": skeleton(item, depth + 1)
                    for i, item in enumerate(node)}
        return {}
    fields = {k: v for k, v in obj.items() if k in ("spec", "data")}
    meta = obj.get("metadata") or {}
    fields["metadata"] = {k: meta[k] for k in ("labels", "annotations") if k in meta}
    return {"manager": manager, "operation": "Update", "apiVersion": obj.get("apiVersion"), "time": at,
            "fieldsType": "FieldsV1", "fieldsV1": skeleton(fields)}
