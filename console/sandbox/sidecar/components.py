"""Which components an app gets, as daprd loads them for its app-id, and which ones the sandbox refuses.

- Scopes (resources.py): a Component whose `scopes` do not name the app does not exist for it at
  all, so its name is "not found" (or, with no component of that building block left, "not
  configured"), exactly as daprd answers.
- daprd exits when a component fails to load (an unknown type or version among them) unless the
  Component says `spec.ignoreErrors: true` (dapr/dapr pkg/runtime/processor/components.go,
  "process component X error: ..."). The sidecar implements pubsub.kafka, state.postgresql (v1, v2)
  and secretstores.kubernetes; any other in-scope type stops it the same way, since it could only
  fake what daprd would load.
- In Kubernetes mode daprd adds a built-in secret store named `kubernetes` to every app
  (pkg/runtime/runtime.go appendBuiltinSecretStore), unless the pod has the annotation
  `dapr.io/disable-builtin-k8s-secret-store: "true"`. The sandbox stands for the cluster: it does too.
- A resources directory that declares no component of a building block at all, for any app, gets
  the runtime contract's name for it (`kafka-pubsub`, `statestore`, `secretstore`), so a bare
  directory works; a sandbox convenience that never applies to kustomize/base.
"""

from __future__ import annotations

import logging

from console.sandbox.sidecar.resources import Component, Resources

log = logging.getLogger(__name__)

IMPLEMENTED = {("pubsub.kafka", "v1"), ("state.postgresql", "v1"), ("state.postgresql", "v2"),
               ("secretstores.kubernetes", "v1")}
BUILTIN_SECRET_STORE = Component("kubernetes", "secretstores.kubernetes")
DEFAULTS = (
    Component("kafka-pubsub", "pubsub.kafka", metadata={"consumerGroup": "{appID}"}),
    Component("statestore", "state.postgresql", version="v2"),
    Component("secretstore", "secretstores.kubernetes"),
)


def app_components(resources: Resources, *, builtin_secret_store: bool) -> tuple[list[Component], list[str]]:
    """(the app's components, refusals): refusals name the components daprd would load and the sandbox cannot."""
    found: list[Component] = []
    refusals: list[str] = []
    for comp in resources.components:
        if (comp.type, comp.version) in IMPLEMENTED:
            found.append(comp)
            continue
        problem = (f"process component {comp.name} error: {comp.type}/{comp.version} is not implemented by the "
                   "dev sidecar (it implements pubsub.kafka/v1, state.postgresql/v1 and v2, "
                   "secretstores.kubernetes/v1)")
        if comp.ignore_errors:
            log.error("Ignoring error processing component", extra={"error": problem})
        else:
            refusals.append(problem)
    for default in DEFAULTS:
        if default.kind not in resources.declared_kinds:
            found.append(default)
    if builtin_secret_store and not any(c.name == BUILTIN_SECRET_STORE.name for c in found):
        found.append(BUILTIN_SECRET_STORE)
    return found, refusals
