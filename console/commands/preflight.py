"""`todo-console preflight`: refuse to deploy what would fail on the cluster, before anything is applied.

install.sh runs it first for prod; run it again with --resolves-to once DNS points at the load balancer,
right before `kubectl apply -k kustomize/overlays/prod`. Exit 0 when every check passes, 1 when one fails
(each finding on its own line), 2 on bad input.
"""

from __future__ import annotations

import argparse

from console.cli import CliError
from console.commands.budget import add_target_arguments
from console.manifests import bootstrap
from console.manifests import budget as budget_model
from console.manifests.cluster_spec import ClusterSpecError, load_cluster_spec
from console.manifests.preflight import run_checks
from console.manifests.render import RenderError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preflight",
        help="refuse placeholder settings, a cluster mismatch, a plan that does not fit, before anything is applied",
        description=(
            "Check an overlay before it reaches a cluster: no placeholder values (todo.example.com, the "
            "axxxxxxxxxxx registry namespace...), the overlay agrees with the cluster spec (API endpoint subnet, "
            "CNI) and with itself (images under the deployable prefix, one tenancy namespace and region), the "
            "Always Free budget fits, every ResourceQuota admits it, the bootstrap creates every namespace, "
            "Secret and CRD before a step needs it, continuous deployment may apply the apps overlay and, with "
            "--resolves-to, the public host already resolves to the load balancer. Exit 1 if any check fails."
        ),
    )
    add_target_arguments(parser)
    parser.add_argument("--resolves-to", metavar="IP", default=None,
                        help="also check that the overlay's host resolves to this address (the load balancer's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        spec = load_cluster_spec(args.cluster_spec)
        checks = run_checks(args.overlay, spec, address=args.resolves_to)
    except (ClusterSpecError, RenderError, budget_model.BudgetError, bootstrap.BootstrapError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    origin = ("the provisioning's Always Free example (no --cluster-spec)" if spec.from_defaults
              else spec.source)
    print(f"Preflight of overlay {args.overlay} for the cluster in {origin}")
    for check in checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name}")
        for finding in check.findings:
            print(f"        - {finding}")
    failed = [c for c in checks if not c.ok]
    print("Refused: fix the findings above before applying anything." if failed else "Ready to apply.")
    return 1 if failed else 0
