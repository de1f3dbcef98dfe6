"""Helm post-render transforms for charts that do not expose a setting we need.

Helm pipes a release's rendered manifests through ``python -m console.manifests.postrender NAME`` (via the
Helm 4 plugin in kustomize/operators/helm-plugins/todo-postrender) and applies what it prints. Each transform
changes exactly the objects it names and fails loudly when they are not there, so a chart upgrade that
renames them stops the install instead of silently dropping the change.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml

Manifest = dict[str, Any]

SCHEDULER = "dapr-scheduler-server"
_INITIAL_CLUSTER = "--etcd-initial-cluster"


class PostRenderError(Exception):
    """The rendered manifests are not what the transform expects (a chart upgrade changed them)."""


def _find(docs: list[Manifest], kind: str, name: str) -> Manifest:
    for doc in docs:
        if doc.get("kind") == kind and (doc.get("metadata") or {}).get("name") == name:
            return doc
    raise PostRenderError(f"no {kind} {name} in the rendered chart")


def single_scheduler(docs: list[Manifest]) -> list[Manifest]:
    """Run the Dapr Scheduler as one replica with one embedded etcd member.

    The dapr chart (1.18) hard-codes three replicas and a three-member etcd cluster, each with its own PVC.
    OKE bills every block volume at 50 GB at least, so three cost 150 of the 200 GB Always Free allowance.
    One member needs both changes: one replica, and an initial cluster that names only that member (with three
    names listed, the lone member would wait forever for a quorum).
    """
    sts = _find(docs, "StatefulSet", SCHEDULER)
    sts["spec"]["replicas"] = 1
    containers = sts["spec"]["template"]["spec"]["containers"]
    server = next((c for c in containers if c.get("name") == SCHEDULER), None)
    if server is None:
        raise PostRenderError(f"StatefulSet {SCHEDULER} has no container {SCHEDULER}")
    args: list[str] = server.get("args") or []
    try:
        at = args.index(_INITIAL_CLUSTER) + 1
        members = args[at].split(",")
    except (ValueError, IndexError):
        raise PostRenderError(f"container {SCHEDULER} has no {_INITIAL_CLUSTER} argument") from None
    first = [m for m in members if m.startswith(f"{SCHEDULER}-0=")]
    if len(first) != 1:
        raise PostRenderError(f"{_INITIAL_CLUSTER} names no member {SCHEDULER}-0: {args[at]!r}")
    args[at] = first[0]
    return docs


TRANSFORMS: dict[str, Callable[[list[Manifest]], list[Manifest]]] = {
    "single-scheduler": single_scheduler,
}


def render(text: str, names: Sequence[str]) -> str:
    """Apply the named transforms, in order, to a stream of YAML documents."""
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown or not names:
        known = ", ".join(sorted(TRANSFORMS))
        raise PostRenderError(f"unknown or missing transform {unknown or '(none)'}; known: {known}")
    docs = [d for d in yaml.safe_load_all(text) if d]
    for name in names:
        docs = TRANSFORMS[name](docs)
    return yaml.safe_dump_all(docs, sort_keys=False)


def main(argv: Sequence[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv)
    try:
        sys.stdout.write(render(sys.stdin.read(), names))
    except (PostRenderError, yaml.YAMLError) as exc:
        sys.stderr.write(f"todo-postrender: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
