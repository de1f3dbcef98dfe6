"""`todo-console pods [POD] [--service NAME] [--describe]`: pods with kubectl's STATUS, READY and RESTARTS.

Without POD: one line per pod (all, or one service's). With POD (a name or a unique prefix) or
`--describe`: what `kubectl describe pod` shows an operator first: containers with their state, last
termination, restarts and probes, the pod's conditions and its recent events. In the sandbox each
service is one pod whose containers are the service process and its dev sidecar. Exit 1 when a pod
shown is crash-looping, cannot pull its image or failed.
"""

from __future__ import annotations

import argparse
import time

from console.model.conditions import age, format_time
from console.model.pods import ContainerSummary, PodSummary
from console.output import Exit, add_output_arguments, emit_json, table
from console.target import add_target_arguments

from .workload_source import pod_json, workloads


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pods", help="pods: status, ready, restarts, probes, node, recent events",
                                   description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pod", nargs="?", help="describe this pod (a name or a unique prefix)")
    parser.add_argument("--service", metavar="NAME", help="only this service's pods (app.kubernetes.io/name)")
    parser.add_argument("--describe", action="store_true", help="describe every pod listed, not one line each")
    add_output_arguments(parser)
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with workloads(args) as (target, source):
        pods = [source.pod(args.pod)] if args.pod else source.pods(args.service)
    if args.json:
        emit_json("pods", {"pods": [pod_json(p) for p in pods]}, target=target.label)
    elif args.pod or args.describe:
        print("\n\n".join(describe(p) for p in pods) if pods else f"no pods in {target.label}")
    else:
        now = time.time()
        rows = [(p.name, p.ready, p.status, p.restarts,
                 age(p.last_restart_at, now) + " ago" if p.last_restart_at else None, p.node,
                 age(p.created_at, now), p.problem_reason) for p in pods]
        print(table(("NAME", "READY", "STATUS", "RESTARTS", "LAST-RESTART", "NODE", "AGE", "PROBLEM"), rows)
              if rows else f"no pods{f' of {args.service}' if args.service else ''} in {target.label}")
    return Exit.PROBLEM if any(p.problem for p in pods) else Exit.OK


def describe(pod: PodSummary) -> str:
    """The parts of `kubectl describe pod` an operator reads first, in its layout."""
    now = time.time()
    lines = [f"Name:           {pod.name}", f"Namespace:      {pod.namespace}", f"Service:        {pod.service or '-'}",
             f"Node:           {pod.node or '-'}", f"Start Time:     {_when(pod.started_at, now)}",
             f"Status:         {pod.status}  (phase {pod.phase}, ready {pod.ready}, restarts {pod.restarts})",
             f"IP:             {pod.ip or '-'}", f"Controlled By:  {'ReplicaSet/' + pod.owner if pod.owner else '-'}"]
    if pod.problem_reason:
        lines.append(f"Problem:        {pod.problem_reason}")
    lines.append("Containers:")
    for container in pod.containers:
        lines.extend(_container(container, now))
    if pod.conditions:
        lines.append("Conditions:")
        lines.extend(f"  {c.type:<26}{c.status}" for c in pod.conditions)
    lines.append("Events:" if pod.events else "Events:         <none>")
    if pod.events:
        lines.append("  " + table(("TYPE", "REASON", "AGE", "FROM", "MESSAGE"), [
            (e.type, e.reason, age(e.last_seen, now) + (f" (x{e.count})" if e.count > 1 else ""), e.source, e.message)
            for e in pod.events]).replace("\n", "\n  "))
    return "\n".join(lines)


def _container(c: ContainerSummary, now: float) -> list[str]:
    state = c.state.capitalize() + (f" ({c.reason})" if c.reason else "") + (
        f", since {_when(c.since, now)}" if c.since else "")
    lines = [f"  {c.name}{' (init)' if c.init else ''}:", f"    Image:          {c.image}", f"    State:          {state}"]
    if c.message:
        lines.append(f"      Message:      {c.message}")
    last = c.last_termination
    if last is not None:
        code = f"exit code {last.exit_code}" if last.exit_code is not None else f"signal {last.signal}"
        lines.append(f"    Last State:     Terminated ({last.reason or '-'}, {code})"
                     + (f", finished {_when(last.finished_at, now)}" if last.finished_at else ""))
    lines += [f"    Ready:          {c.ready}", f"    Restart Count:  {c.restarts}"]
    lines.extend(f"    {p.kind.capitalize() + ':':<16}{p.describe()}" for p in c.probes)
    return lines


def _when(epoch: float | None, now: float) -> str:
    return "-" if epoch is None else f"{format_time(epoch)} ({age(epoch, now)} ago)"
