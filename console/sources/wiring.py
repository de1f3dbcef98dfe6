"""The platform's wiring (Subscriptions, ScaledObjects) for a target.

The sandbox's sidecars read the Subscriptions of kustomize/base, and the cluster runs the prod overlay,
so for the sandbox the rendered prod overlay is the truth. For a cluster the truth is what its API
server holds: the Kubernetes source's Subscriptions and ScaledObjects, passed to `read_wiring` by the
caller that has that source; without one, the rendered prod overlay is what the cluster was deployed from.
"""

from __future__ import annotations

from console.manifests.render import KUSTOMIZE_DIR, RenderError, render_overlay
from console.model.wiring import Wiring, read_wiring
from console.sources.health import SourceError

OVERLAY = "prod"


def rendered_wiring(overlay: str = OVERLAY) -> Wiring:
    """The wiring of a kustomize overlay, rendered with the real kustomize."""
    try:
        return read_wiring(render_overlay(overlay))
    except RenderError as exc:
        raise SourceError("kustomize", str(KUSTOMIZE_DIR / "overlays" / overlay), str(exc)) from exc
