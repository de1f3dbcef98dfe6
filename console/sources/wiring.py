"""The platform's wiring (Subscriptions, ScaledObjects) for a target.

The sandbox's sidecars read the Subscriptions of kustomize/base, and the cluster runs the prod overlay,
so for the sandbox the rendered prod overlay is the truth. For a cluster the truth is what its API
server holds: the Kubernetes source's Subscriptions and ScaledObjects, passed to `read_wiring` by the
caller that has that source; without one, the rendered prod overlay is what the cluster was deployed from.
"""

from __future__ import annotations

from console.manifests.render import KUSTOMIZE_DIR, RenderError, render_overlay, tree_signature
from console.model.wiring import Wiring, read_wiring
from console.sources.health import SourceError

OVERLAY = "prod"
_rendered: dict[str, tuple[tuple[int, int], Wiring]] = {}


def rendered_wiring(overlay: str = OVERLAY) -> Wiring:
    """The wiring of a kustomize overlay, rendered with the real kustomize (about a second), again only
    when a file under kustomize/ changed: the dashboard asks on every refresh."""
    signature = tree_signature(KUSTOMIZE_DIR)
    cached = _rendered.get(overlay)
    if cached is not None and cached[0] == signature:
        return cached[1]
    try:
        wiring = read_wiring(render_overlay(overlay))
    except RenderError as exc:
        raise SourceError("kustomize", str(KUSTOMIZE_DIR / "overlays" / overlay), str(exc)) from exc
    _rendered[overlay] = (signature, wiring)
    return wiring

