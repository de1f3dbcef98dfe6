"""`todo-console budget`: does the rendered overlay fit Oracle's Always Free allowance?

Exit code 0 when it fits, 1 when it does not (so CI can gate on it), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json

from console.cli import CliError
from console.manifests import budget as budget_model
from console.manifests.render import RenderError, render_overlay


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "budget",
        help="CPU, memory and block-volume budget of an overlay against Always Free (4 OCPU / 24 GB / 200 GB)",
        description=(
            "Render the overlay with kustomize and add up the CPU and memory requests of every pod at its minimum "
            "scale (app containers, daprd sidecars, Strimzi, the Helm-installed operators and OKE's kube-system "
            "pods) and the block volumes (each PVC rounds up to OKE's 50 GB minimum). Exit 1 if it does not fit."
        ),
    )
    parser.add_argument("--overlay", default="prod", help="overlay under kustomize/overlays (default: prod)")
    parser.add_argument("--json", action="store_true", help="print the budget as JSON")
    parser.add_argument("--nodes", type=int, default=budget_model.DEFAULT_NODES,
                        help="worker nodes sharing the 4 OCPU / 24 GB, for per-node pods (default: 2)")
    parser.add_argument("--boot-volume-gb", type=int, default=0,
                        help="also count each node's boot volume against the 200 GB (OKE default: 50); default: 0")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.boot_volume_gb < 0:
        raise CliError("--boot-volume-gb cannot be negative")
    try:
        objs = render_overlay(args.overlay)
        result = budget_model.compute(objs, overlay=args.overlay, nodes=args.nodes,
                                      boot_volume_gb=args.boot_volume_gb)
    except (RenderError, budget_model.BudgetError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(budget_model.format_report(result))
    return 0 if result.fits else 1
