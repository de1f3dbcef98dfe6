"""`todo-console provision`: OKE on OCI from a cluster spec (provisioning/README.md is the operator guide).

Exit codes, as everywhere in the console: 0 ok; 1 a problem found (preflight does not fit, the plan has
changes or is blocked, a work request FAILED, something is left after destroy); 2 bad usage, a bad spec or
OCI config, or OCI unreachable, with one line on stderr. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli import CliError
from provisioning import DEFAULT_SPEC

# Every console command's parser is built at start-up: the OCI SDK and the Kubernetes client behind this
# command take seconds to import, so they are imported when an action runs.
if TYPE_CHECKING:
    from provisioning.oci_client import OciClient
    from provisioning.plan import Plan
    from provisioning.spec import ClusterSpec

Handler = Callable[[argparse.Namespace, "ClusterSpec", "OciClient"], int]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "provision",
        help="OKE on OCI from a cluster spec: preflight, plan, apply, destroy, kubeconfig",
        description="Create and remove the network, OKE cluster and node pool a cluster spec describes. No state "
                    "file: what exists is found by compartment and the todo-platform-* freeform tags.",
    )
    actions = parser.add_subparsers(dest="provision_command", metavar="ACTION")
    actions.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=DEFAULT_SPEC, metavar="FILE",
                        help="cluster spec YAML (default: provisioning/clusters/always-free.yaml)")
    common.add_argument("--profile", help="OCI config profile (default: $OCI_CLI_PROFILE, else DEFAULT)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the result as JSON")

    preflight = actions.add_parser("preflight", parents=[common, as_json],
                                   help="check the tenancy's limits and OKE's offer against what would be created")
    preflight.set_defaults(func=_with_client(run_preflight_command))
    plan = actions.add_parser("plan", parents=[common, as_json],
                              help="what exists and what apply would create, update, keep or delete (exit 1: changes)")
    plan.set_defaults(func=_with_client(run_plan))
    apply = actions.add_parser("apply", parents=[common, as_json],
                               help="preflight, then create or update everything in dependency order")
    apply.add_argument("--skip-preflight", action="store_true",
                       help="do not ask the Limits service first (it needs 'inspect resource-availability')")
    apply.set_defaults(func=_with_client(run_apply))
    destroy = actions.add_parser("destroy", parents=[common, as_json],
                                 help="delete everything carrying this cluster's tags, in reverse order")
    destroy.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    destroy.set_defaults(func=_with_client(run_destroy))
    kubeconfig = actions.add_parser("kubeconfig", parents=[common],
                                    help="OKE's kubeconfig, or a ServiceAccount-token kubeconfig for CI and the console")
    kubeconfig.add_argument("--out", type=Path, help="write it here (mode 0600) instead of stdout")
    kubeconfig.add_argument("--service-account", metavar="NAMESPACE/NAME",
                            help="a kubeconfig with a token for this ServiceAccount, e.g. todo-app/console-viewer")
    kubeconfig.add_argument("--duration", default="8h", help="the ServiceAccount token's lifetime (default: 8h)")
    kubeconfig.set_defaults(func=_with_client(run_kubeconfig))


def _progress(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _with_client(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Load the spec and the OCI config, then run the handler; OCI's failures become exit codes."""

    def run(args: argparse.Namespace) -> int:
        from pydantic import ValidationError

        from provisioning.apply import ApplyRefused
        from provisioning.kubeconfig import KubeconfigError
        from provisioning.oci_client import OciClient, OciConfigError, OciError, OciUnreachable
        from provisioning.settings import ProvisionSettings
        from provisioning.spec import SpecError, load_cluster_spec

        try:
            spec = load_cluster_spec(args.config)
        except SpecError as exc:
            raise CliError(str(exc)) from None
        try:
            settings = ProvisionSettings(**({"oci_profile": args.profile} if args.profile else {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "TODO_PROVISION_" + "_".join(str(part) for part in first["loc"]).upper()
            raise CliError(f"{name}: {first['msg']}") from None
        try:
            return handler(args, spec, OciClient(spec, settings, report=_progress))
        except (OciConfigError, OciUnreachable, KubeconfigError) as exc:
            raise CliError(str(exc)) from None
        except (OciError, ApplyRefused) as exc:
            print(f"todo-console provision {args.provision_command}: {exc}", file=sys.stderr)
            return 1

    return run


def _plan(spec: ClusterSpec, client: OciClient) -> Plan:
    from provisioning.plan import make_plan
    from provisioning.resources import desired_resources

    return make_plan(spec.name, desired_resources(spec), client.discover().observed)


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def run_preflight_command(args: argparse.Namespace, spec: ClusterSpec, client: OciClient) -> int:
    from provisioning.preflight import format_report, run_preflight

    plan = _plan(spec, client)
    report = run_preflight(client, spec, plan)
    _emit(args, {"preflight": report.to_dict(), "plan": plan.to_dict()}, format_report(report))
    return 0 if report.ok else 1


def run_plan(args: argparse.Namespace, spec: ClusterSpec, client: OciClient) -> int:
    from provisioning.plan import format_plan

    plan = _plan(spec, client)
    _emit(args, plan.to_dict(), format_plan(plan))
    return 1 if plan.has_changes else 0


def run_apply(args: argparse.Namespace, spec: ClusterSpec, client: OciClient) -> int:
    from provisioning.apply import ApplyRefused, apply_plan
    from provisioning.plan import format_plan
    from provisioning.preflight import format_report, run_preflight

    plan = _plan(spec, client)
    if not args.json:
        print(format_plan(plan))
    result: dict[str, Any] = {"plan": plan.to_dict()}
    if plan.blocked:
        raise ApplyRefused("; ".join(f"{step.key}: {step.reason}" for step in plan.blocked))
    if plan.has_changes and not args.skip_preflight:
        report = run_preflight(client, spec, plan)
        result["preflight"] = report.to_dict()
        if not report.ok:
            _emit(args, result, format_report(report))
            return 1
    outcome = apply_plan(plan, client, report=_progress)
    result["outcome"] = outcome.to_dict()
    after = _plan(spec, client)
    result["in_sync"] = not after.has_changes
    if after.has_changes:
        _emit(args, result, format_plan(after))
        print("todo-console provision apply: the environment still differs from the spec", file=sys.stderr)
        return 1
    _emit(args, result, f"Applied {len(outcome.done)} changes in {outcome.seconds:.0f}s; "
                        f"the environment matches {args.config}.")
    return 0


def run_destroy(args: argparse.Namespace, spec: ClusterSpec, client: OciClient) -> int:
    from provisioning.apply import ApplyRefused, apply_plan
    from provisioning.plan import destroy_plan, format_plan

    discovery = client.discover(include_load_balancers=True)
    plan = destroy_plan(spec.name, discovery.observed, discovery.foreign_load_balancers)
    if not args.json:
        print(format_plan(plan))
    if plan.blocked:
        raise ApplyRefused("nothing was deleted: " + "; ".join(f"{s.name}: {s.reason}" for s in plan.blocked))
    if plan.steps and not args.yes:
        _confirm(spec, len(plan.steps))
    outcome = apply_plan(plan, client, report=_progress)
    left = client.discover(include_load_balancers=True).observed
    result = {"plan": plan.to_dict(), "outcome": outcome.to_dict(), "left": [o.name for o in left]}
    if left:
        if args.json:
            print(json.dumps(result, indent=2))
        print(f"todo-console provision destroy: still there: {', '.join(o.name for o in left)}", file=sys.stderr)
        return 1
    _emit(args, result, f"Deleted {len(outcome.done)} resources; nothing carrying "
                        f"todo-platform-cluster={spec.name} is left in the compartment.")
    return 0


def _confirm(spec: ClusterSpec, count: int) -> None:
    if not sys.stdin.isatty():
        raise CliError("destroy deletes real resources: pass --yes when not running interactively")
    answer = input(f"Delete these {count} resources of '{spec.name}'? Type the cluster name to confirm: ")
    if answer.strip() != spec.name:
        raise CliError("not confirmed; nothing was deleted")


def run_kubeconfig(args: argparse.Namespace, spec: ClusterSpec, client: OciClient) -> int:
    from provisioning.kubeconfig import (
        cluster_endpoint,
        parse_duration,
        service_account_token,
        token_kubeconfig,
    )
    from provisioning.resources import desired_resources

    duration = parse_duration(args.duration)
    account = None
    if args.service_account:
        namespace, _, name = args.service_account.partition("/")
        if not namespace or not name:
            raise CliError("--service-account: expected NAMESPACE/NAME, e.g. todo-app/console-viewer")
        account = (namespace, name)
    want = next(d for d in desired_resources(spec) if d.key == "cluster")
    cluster = client.find(want)
    if cluster is None:
        print(f"todo-console provision kubeconfig: no cluster {want.name} in the compartment: run "
              f"`todo-console provision apply --config {args.config}` first", file=sys.stderr)
        return 1
    text = client.kubeconfig(cluster.id)
    if account:
        server, ca_data = cluster_endpoint(text)
        token, expiry = service_account_token(server, ca_data, client.cluster_token(cluster.id), *account, duration)
        text = token_kubeconfig(server, ca_data, token, want.name, *account)
        _progress(f"token for {account[0]}/{account[1]} expires {expiry}")
    if args.out:
        _write_private(args.out, text)
        _progress(f"wrote {args.out}")
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def _write_private(path: Path, text: str) -> None:
    """Kubeconfigs hold credentials: create the file readable by its owner only."""
    path = path.expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        path.chmod(0o600)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
