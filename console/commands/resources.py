"""`todo-console resources [--kind KIND ...]`: the platform's resources and whether their operators are happy.

Strimzi Kafka, KafkaNodePool and KafkaTopic; Dapr Component, Subscription, Resiliency and Configuration
(declared only: Dapr writes no status, but a Subscription whose pub/sub Component is missing is broken);
KEDA ScaledObjects with the metric and replicas of the HPA they drive; cert-manager Certificates with
the days left; HPAs. In the sandbox: the broker, its topics and the Dapr resources the sidecars load.
Exit 1 when a resource is not ready (or a certificate expires within 14 days); 2 when a kind could not
be read (for example a read-only ServiceAccount without access to it), after printing the others.
"""

from __future__ import annotations

import argparse
import sys

from console.cli import CliError
from console.model.platform import KIND_NAMES, PLATFORM_KINDS
from console.output import Exit, add_output_arguments, emit_json, table
from console.target import add_target_arguments

from .workload_source import resource_json, workloads


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("resources", help="Strimzi, Dapr, KEDA, cert-manager and HPA resources",
                                   description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", action="append", metavar="KIND",
                        help=f"only this kind (repeatable): {', '.join(sorted(KIND_NAMES))}")
    add_output_arguments(parser)
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def kinds_from(names: list[str] | None) -> list[str]:
    if not names:
        return list(PLATFORM_KINDS)
    kinds = []
    for name in names:
        key = name.lower()
        singular = key[:-3] + "y" if key.endswith("ies") else key.removesuffix("s")
        kind = KIND_NAMES.get(key) or KIND_NAMES.get(singular)
        if kind is None:
            raise CliError(f"--kind {name}: unknown kind (one of: {', '.join(sorted(KIND_NAMES))})")
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def run(args: argparse.Namespace) -> int:
    kinds = kinds_from(args.kind)
    with workloads(args) as (target, source):
        report = source.resources(kinds)
    if args.json:
        emit_json("resources", {
            "resources": [resource_json(r) for r in report.resources],
            "unreadable": [{"kind": kind, "error": error} for kind, error in report.unreadable],
        }, target=target.label)
    else:
        rows = [(r.kind, r.namespace, r.name, "-" if r.ready is None else ("yes" if r.ready else "no"), r.state,
                 "  ".join(f"{k}={v}" for k, v in r.facts()), r.message) for r in report.resources]
        print(table(("KIND", "NAMESPACE", "NAME", "READY", "STATE", "DETAIL", "MESSAGE"), rows) if rows
              else f"no {', '.join(kinds)} in {target.label}")
        for kind, error in report.unreadable:
            print(f"todo-console resources: {kind}: {error}", file=sys.stderr)
    if report.problem:
        return Exit.PROBLEM
    return Exit.ERROR if report.unreadable else Exit.OK
