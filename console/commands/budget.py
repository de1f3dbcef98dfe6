"""`todo-console budget`: does the rendered overlay fit Oracle's Always Free allowance?

Exit code 0 when it fits, 1 when it does not (so CI can gate on it), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from console.cli import CliError
from console.manifests import budget as budget_model
from console.manifests.cluster_spec import DEFAULT_SPEC_PATH, ClusterSpecError, load_cluster_spec
from console.manifests.render import RenderError, render_overlay


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """--overlay and --cluster-spec, shared with `preflight`: what is deployed, and onto which cluster."""
    parser.add_argument("--overlay", default="prod", help="overlay under kustomize/overlays (default: prod)")
    parser.add_argument(
        "--cluster-spec", type=Path, default=None, metavar="FILE",
        help=f"OKE cluster spec (node pool, API endpoint subnet, CNI); default {DEFAULT_SPEC_PATH.relative_to(DEFAULT_SPEC_PATH.parents[2])} "
             "when it exists, else the same Always Free values built in",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "budget",
        help="CPU, memory and block volumes of an overlay against Always Free (4 OCPU / 24 GB / 200 GB)",
        description=(
            "Render the overlay with kustomize and add up the CPU and memory requests of every pod (app containers "
            "with their daprd sidecars, Strimzi, PostgreSQL, the Helm-installed operators, Calico and OKE's "
            "kube-system pods) at minimum scale, maximum scale and during a rollout of every Deployment at maximum "
            "scale, against the node pool's allocatable (capacity minus OKE's kube-reserved), in total and pod by "
            "pod on the nodes; and the block volumes (every boot volume, every PVC at OKE's 50 GB minimum) against "
            "200 GB. Exit 1 if anything does not fit."
        ),
    )
    add_target_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the budget as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        spec = load_cluster_spec(args.cluster_spec)
        objs = render_overlay(args.overlay)
        result = budget_model.compute(objs, overlay=args.overlay, spec=spec)
    except (ClusterSpecError, RenderError, budget_model.BudgetError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(budget_model.format_report(result))
    return 0 if result.fits else 1
