"""The three PATCH bodies the API server accepts for built-in kinds, applied to plain dicts.

- application/json-patch+json (RFC 6902): what `kubectl rollout undo` sends for a Deployment.
- application/merge-patch+json (RFC 7386).
- application/strategic-merge-patch+json: what `kubectl rollout restart` sends. Maps merge and `null`
  deletes, as in RFC 7386; lists with a patch merge key in the Go types (containers by name, env by
  name, ports by containerPort, ...) merge item by item, other lists are replaced; the `$patch:
  replace|delete` directives are honoured and `$setElementOrder/`/`$retainKeys` are accepted. That is the
  subset kubectl's two-way merge patches of workloads use; server-side apply is not served.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that cannot apply; the server answers 422 (JSON patch test/paths) or 400 (malformed)."""


# Patch merge keys of the lists a workload patch touches (k8s.io/api struct tags `patchMergeKey`).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "ports": "containerPort", "volumes": "name", "volumeMounts": "mountPath", "imagePullSecrets": "name",
    "conditions": "type", "ownerReferences": "uid", "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
}


def json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    result: Any = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], _pointer(op["path"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {kind} operation")
        if kind == "add":
            result = _put(result, path, copy.deepcopy(op["value"]), insert=True)
        elif kind == "replace":
            _get(result, path)
            result = _put(result, path, copy.deepcopy(op["value"]), insert=False)
        elif kind == "remove":
            _remove(result, path)
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = copy.deepcopy(_get(result, source))
            if kind == "move":
                _remove(result, source)
            result = _put(result, path, value, insert=True)
        elif kind == "test":
            if _get(result, path) != op["value"]:
                raise PatchError(f"testing value {op['path']} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _get(doc: Any, path: list[str]) -> Any:
    node = doc
    for key in path:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise PatchError(f"doc is missing path: /{'/'.join(path)}")
    return node


def _put(doc: Any, path: list[str], value: Any, *, insert: bool) -> Any:
    if not path:
        return value
    parent = _get(doc, path[:-1])
    key = path[-1]
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-":
            parent.append(value)
        elif key.isdigit() and int(key) <= len(parent):
            if insert:
                parent.insert(int(key), value)
            else:
                parent[int(key)] = value
        else:
            raise PatchError(f"index out of range: /{'/'.join(path)}")
    else:
        raise PatchError(f"doc is missing path: /{'/'.join(path)}")
    return doc


def _remove(doc: Any, path: list[str]) -> None:
    parent = _get(doc, path[:-1])
    key = path[-1]
    try:
        del parent[int(key) if isinstance(parent, list) else key]
    except (KeyError, IndexError, ValueError):
        raise PatchError(f"doc is missing path: /{'/'.join(path)}") from None


def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(doc: Any, patch: Any, field: str | None = None) -> Any:
    if isinstance(patch, dict):
        directive = patch.get("$patch")
        if directive == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        if directive == "delete":
            return None
        result = copy.deepcopy(doc) if isinstance(doc, dict) else {}
        for key, value in patch.items():
            if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
                continue
            if value is None:
                result.pop(key, None)
                continue
            merged = strategic_merge_patch(result.get(key), value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        return result
    if isinstance(patch, list) and field in MERGE_KEYS and isinstance(doc, list):
        return _merge_list(doc, patch, _merge_key(field, patch))
    return copy.deepcopy(patch)


def _merge_key(field: str, items: list[Any]) -> str:
    """A container's `ports` merge on containerPort, a Service's on port (ServiceSpec's patchMergeKey)."""
    if field == "ports" and items and all(isinstance(i, dict) and "containerPort" not in i and "port" in i
                                          for i in items):
        return "port"
    return MERGE_KEYS[field]


def _merge_list(doc: list[Any], patch: list[Any], key: str) -> list[Any]:
    result = copy.deepcopy(doc)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key}")
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append({k: v for k, v in copy.deepcopy(item).items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result
