"""`todo-console rollout status|history|restart|undo`: kubectl's rollout verbs, for the cluster and the sandbox.

status   every Deployment (or one, with its conditions): kubectl's verdict; `--wait` follows it until it
         completes, fails or `--timeout` passes. Exit 1 for a failed or degraded rollout (or a timeout).
history  the revisions from the Deployment's ReplicaSets: image(s), change cause, age, pods.
restart  kubectl's restart patch; in the sandbox, the service process is stopped and started again.
undo     kubectl's rollback to the previous revision or `--to-revision N` (cluster only).
Mutations ask first (`--yes` to skip), show what they would do with `--dry-run` (the API server's dry run
on a cluster, so RBAC and admission are checked too) and are refused under `--readonly`.
"""

from __future__ import annotations

import argparse
import sys
import time

from console.cli import CliError
from console.model.conditions import age
from console.model.rollout import RolloutStatus, short_image
from console.output import (
    Exit,
    add_mutation_arguments,
    add_output_arguments,
    confirm,
    emit_json,
    guard_mutation,
    table,
)
from console.sources.workloads import WaitOutcome, Workloads, wait_for_rollout
from console.target import SandboxTarget, Target, add_target_arguments

from .workload_source import rollout_json, workloads

DEFAULT_TIMEOUT_S = 300.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rollout", help="Deployment rollouts: status, history, restart, undo",
                                   description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="rollout_command", metavar="ACTION")
    actions.required = True

    status = actions.add_parser("status", help="rollout state of every Deployment, or of one")
    status.add_argument("deployment", nargs="?", help="one Deployment (default: all)")
    _add_wait(status)
    _common(status)
    status.set_defaults(func=run_status)

    history = actions.add_parser("history", help="the revisions of a Deployment")
    history.add_argument("deployment")
    _common(history)
    history.set_defaults(func=run_history)

    restart = actions.add_parser("restart", help="replace every pod of a Deployment (kubectl rollout restart)")
    restart.add_argument("deployment")
    _add_wait(restart)
    add_mutation_arguments(restart)
    _common(restart)
    restart.set_defaults(func=run_restart)

    undo = actions.add_parser("undo", help="roll a Deployment back to an earlier revision (kubectl rollout undo)")
    undo.add_argument("deployment")
    undo.add_argument("--to-revision", type=int, default=0, metavar="N",
                      help="the revision to go back to (default: the previous one)")
    _add_wait(undo)
    add_mutation_arguments(undo)
    _common(undo)
    undo.set_defaults(func=run_undo)


def _common(parser: argparse.ArgumentParser) -> None:
    add_output_arguments(parser)
    add_target_arguments(parser)


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="follow the rollout until it completes or fails")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"give up waiting after S seconds (default: {DEFAULT_TIMEOUT_S:g})")


def _check_timeout(args: argparse.Namespace) -> None:
    if args.timeout <= 0:
        raise CliError(f"--timeout must be positive, not {args.timeout:g}")


# --- status ----------------------------------------------------------------------------------------------


def run_status(args: argparse.Namespace) -> int:
    _check_timeout(args)
    with workloads(args) as (target, source):
        if args.deployment is None:
            if args.wait:
                raise CliError("--wait needs a DEPLOYMENT")
            rollouts = source.rollouts()
            if args.json:
                emit_json("rollout-status", {"rollouts": [rollout_json(r) for r in rollouts]}, target=target.label)
            else:
                print(_rollouts_table(rollouts))
            return Exit.PROBLEM if any(r.problem for r in rollouts) else Exit.OK
        if args.wait:
            outcome = _wait(args, source, args.deployment, None)
            return _report_wait(args, target, outcome)
        status = source.rollout(args.deployment)
        if args.json:
            emit_json("rollout-status", {"rollouts": [rollout_json(status)]}, target=target.label)
        else:
            print(_detail(status))
        return Exit.PROBLEM if status.problem else Exit.OK


def _rollouts_table(rollouts: list[RolloutStatus]) -> str:
    rows = [(r.name, r.state, f"{r.ready}/{r.desired}", r.updated, r.available, r.revision,
             ",".join(short_image(i) for i in r.images), r.message) for r in rollouts]
    return table(("DEPLOYMENT", "STATE", "READY", "UP-TO-DATE", "AVAILABLE", "REVISION", "IMAGES", "MESSAGE"), rows)


def _detail(status: RolloutStatus) -> str:
    now = time.time()
    facts = (f"desired {status.desired}  current {status.replicas}  updated {status.updated}  ready {status.ready}  available "
             f"{status.available}  revision {status.revision or '-'}  generation "
             f"{status.observed_generation}/{status.generation}")
    if status.progress_deadline_s:
        facts += f"  progress deadline {status.progress_deadline_s}s"
    lines = [status.message, facts]
    if status.images:
        lines.append("images: " + ", ".join(status.images))
    if status.conditions:
        lines.append(table(("CONDITION", "STATUS", "REASON", "SINCE", "UPDATED", "MESSAGE"), [
            (c.type, c.status, c.reason, age(c.last_transition, now), age(c.last_update, now), c.message)
            for c in status.conditions]))
    return "\n".join(lines)


def _wait(args: argparse.Namespace, source: Workloads, name: str, generation: int | None) -> WaitOutcome:
    def progress(status: RolloutStatus) -> None:
        if not args.json:
            print(status.message, flush=True)
    return wait_for_rollout(source, name, args.timeout, min_generation=generation, on_change=progress)


def _report_wait(args: argparse.Namespace, target: Target, outcome: WaitOutcome, kind: str = "rollout-status",
                 facts: dict[str, object] | None = None) -> int:
    status = outcome.status
    if args.json:
        emit_json(kind, {**(facts or {}), "rollouts": [rollout_json(status)], "waited": True,
                         "finished": outcome.finished, "timed_out": not outcome.finished}, target=target.label)
    elif not outcome.finished:
        print(f"timed out after {args.timeout:g}s waiting for deployment \"{status.name}\": {status.message}",
              file=sys.stderr)
    return Exit.OK if outcome.finished and status.done else Exit.PROBLEM


# --- history ---------------------------------------------------------------------------------------------


def run_history(args: argparse.Namespace) -> int:
    with workloads(args) as (target, source):
        revisions = source.history(args.deployment)
        if args.json:
            emit_json("rollout-history", {"deployment": args.deployment,
                                         "revisions": [vars(r) | {"images": list(r.images)} for r in revisions]},
                      target=target.label)
            return Exit.OK
        now = time.time()
        print(f"deployment.apps/{args.deployment}")
        print(table(("REVISION", "REPLICASET", "IMAGES", "CHANGE-CAUSE", "AGE", "PODS", "RESTARTED-AT"), [
            (f"{r.revision}{' (current)' if r.current else ''}", r.replicaset,
             ",".join(short_image(i) for i in r.images), r.change_cause or "<none>", age(r.created_at, now),
             f"{r.ready}/{r.replicas}", r.restarted_at) for r in revisions]))
        return Exit.OK


# --- restart ---------------------------------------------------------------------------------------------


def run_restart(args: argparse.Namespace) -> int:
    _check_timeout(args)
    guard_mutation(args, "rollout restart")
    with workloads(args) as (target, source):
        if not args.dry_run and not confirm(args, f"Restart {args.deployment} in {target.label}?"):
            print("not restarted", file=sys.stderr)
            return Exit.OK
        result = source.restart(args.deployment, dry_run=args.dry_run, timeout_s=args.timeout)
        verb = "restarted (dry run, nothing changed)" if result.dry_run else "restarted"
        sandbox = isinstance(target, SandboxTarget)
        what = f"sandbox service {result.deployment}" if sandbox else f"deployment.apps/{result.deployment}"
        summary = {"deployment": result.deployment, "dry_run": result.dry_run, "detail": result.detail,
                   "generation": result.generation}
        if not args.json:
            print(f"{what} {verb}: {result.detail}", flush=True)
        # The sandbox restart is only done once the new process is ready again; a cluster waits on --wait.
        if not result.dry_run and (args.wait or sandbox):
            outcome = _wait(args, source, args.deployment, result.generation)
            return _report_wait(args, target, outcome, "rollout-restart", summary)
        if args.json:
            emit_json("rollout-restart", {**summary, "waited": False}, target=target.label)
        return Exit.OK


# --- undo ------------------------------------------------------------------------------------------------


def run_undo(args: argparse.Namespace) -> int:
    _check_timeout(args)
    guard_mutation(args, "rollout undo")
    if args.to_revision < 0:
        raise CliError(f"--to-revision must be 0 (the previous revision) or a revision number, not {args.to_revision}")
    with workloads(args) as (target, source):
        preview = source.undo(args.deployment, args.to_revision, dry_run=True)
        plan = preview.plan
        images = ", ".join(short_image(i) for i in plan.images)
        summary = {"deployment": plan.deployment, "from_revision": plan.from_revision,
                   "to_revision": plan.to_revision, "replicaset": plan.replicaset, "images": list(plan.images),
                   "skipped": plan.skipped, "dry_run": args.dry_run, "generation": preview.generation}
        if plan.skipped or args.dry_run:
            if args.json:
                emit_json("rollout-undo", {**summary, "waited": False}, target=target.label)
            else:
                suffix = " (dry run, nothing changed)" if args.dry_run and not plan.skipped else ""
                print(f"deployment.apps/{plan.deployment}: {plan.summary} ({images}){suffix}")
            return Exit.OK
        if not confirm(args, f"Roll {plan.deployment} in {target.label} back from revision {plan.from_revision} "
                             f"to revision {plan.to_revision} ({images})?"):
            print("not rolled back", file=sys.stderr)
            return Exit.OK
        done = source.undo(args.deployment, plan.to_revision)
        summary["generation"] = done.generation
        if not args.json:
            print(f"deployment.apps/{plan.deployment} rolled back to revision {plan.to_revision} ({images})", flush=True)
        if args.wait:
            outcome = _wait(args, source, args.deployment, done.generation)
            return _report_wait(args, target, outcome, "rollout-undo", summary)
        if args.json:
            emit_json("rollout-undo", {**summary, "waited": False}, target=target.label)
        return Exit.OK
