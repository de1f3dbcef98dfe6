"""`todo-console dlq`: dead letters per topic, browse them, redrive them to where they came from, purge them.

  dlq list                      each DLQ with its apps and subscriptions: pending, waiting, redriven, last hour,
                                oldest waiting; exit 1 when a dead letter is waiting for a decision
  dlq show DLQ [--id ID] [--limit N] [--all-records]
                                the dead letters (key, CloudEvent, headers, failure reason with --id)
  dlq redrive DLQ (--id ID | --type T | --older-than D | --reason R | --all) [--max-redrives N]
                                back to the original topic; prints the plan first (--dry-run stops there),
                                asks unless --yes; exit 1 when a selected message was refused
  dlq purge DLQ (--all | --older-than D)
                                DeleteRecords where the broker supports it, else marked handled; says which
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from console.cli import CliError
from console.commands._kafka import duration, kafka_for, source_errors, wiring_for
from console.live import connect
from console.model.dlq import (
    POISON_AFTER,
    DeadLetter,
    DlqSummary,
    LedgerEntry,
    RedrivePlanItem,
    Selection,
    letter_state,
)
from console.output import (
    Exit,
    add_mutation_arguments,
    add_output_arguments,
    confirm,
    emit_json,
    format_duration,
    guard_mutation,
    table,
)
from console.sources.dead_letters import DeadLetters, PurgeResult, RedriveResult
from console.target import add_target_arguments, resolve_target


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dlq", help="dead-letter topics: list, show, redrive, purge",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", help="every DLQ with its depth, rate and oldest waiting message")
    _common(listing)
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="the dead letters of one DLQ")
    show.add_argument("dlq")
    show.add_argument("--id", action="append", default=[], help="CloudEvent id or PARTITION/OFFSET: full detail")
    show.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    show.add_argument("--all-records", action="store_true", help="also the purged ones still in the log")
    _common(show)
    show.set_defaults(func=run_show)

    redrive = actions.add_parser("redrive", help="send dead letters back to their original topic")
    redrive.add_argument("dlq")
    redrive.add_argument("--id", action="append", default=[], help="CloudEvent id or PARTITION/OFFSET (repeatable)")
    redrive.add_argument("--type", dest="event_type", help="CloudEvent type")
    redrive.add_argument("--older-than", type=duration, help="dead-lettered longer ago than this (90s, 15m, 2h, 3d)")
    redrive.add_argument("--reason", help="failure reason contains this text")
    redrive.add_argument("--all", action="store_true", help="every waiting dead letter")
    redrive.add_argument("--max-redrives", type=int, default=POISON_AFTER,
                         help=f"refuse a message redriven this often already, as poison (default {POISON_AFTER})")
    _common(redrive)
    add_mutation_arguments(redrive)
    redrive.set_defaults(func=run_redrive)

    purge = actions.add_parser("purge", help="delete (or mark handled) the dead letters of one DLQ")
    purge.add_argument("dlq")
    which = purge.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every pending dead letter")
    which.add_argument("--older-than", type=duration, help="those dead-lettered longer ago than this")
    _common(purge)
    add_mutation_arguments(purge)
    purge.set_defaults(func=run_purge)


def _common(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    add_output_arguments(parser)


def _open(args: argparse.Namespace) -> tuple[DeadLetters, str]:
    """The target's dead letters, built as the hub builds them: the target's wiring, its Kafka, and failure
    reasons from its log store for the messages that carry none."""
    target = resolve_target(args)
    wiring = wiring_for(target)
    with source_errors():
        logs = connect.open_logs(target)
    return connect.dead_letters(kafka_for(target), wiring, logs), target.label


# --- list ----------------------------------------------------------------------------------------------
def run_list(args: argparse.Namespace) -> int:
    dead, label = _open(args)
    try:
        with source_errors():
            summaries = dead.summaries()
    finally:
        dead.kafka.close()
    now = time.time()
    if args.json:
        emit_json("dlq-list", {"dlqs": [summary_json(s, now) for s in summaries]}, target=label)
    else:
        print(table(["DLQ", "APPS", "FROM TOPICS", "PENDING", "WAITING", "REDRIVEN", "LAST HOUR", "OLDEST WAITING"],
                    [[s.topic, ",".join(s.apps), ",".join(s.original_topics), s.pending, _bound(s.waiting, s),
                      _bound(s.redriven, s), _bound(s.last_hour, s),
                      format_duration(now - s.oldest_waiting_at) if s.oldest_waiting_at else None]
                     for s in summaries]))
    return int(Exit.PROBLEM if any(s.waiting for s in summaries) else Exit.OK)


def _bound(value: int, s: DlqSummary) -> str:
    return str(value) if s.scanned_all else f">={value}"


def summary_json(s: DlqSummary, now: float) -> dict[str, Any]:
    return {
        "topic": s.topic, "apps": s.apps, "original_topics": s.original_topics,
        "subscriptions": [{"name": sub.name, "app_id": sub.app_id, "topic": sub.topic} for sub in s.subscriptions],
        "partitions": s.partitions, "total": s.total, "pending": s.pending, "waiting": s.waiting,
        "redriven": s.redriven, "last_hour": s.last_hour, "scanned_all": s.scanned_all,
        "oldest_waiting_age_s": round(now - s.oldest_waiting_at, 3) if s.oldest_waiting_at else None,
        "newest_age_s": round(now - s.newest_at, 3) if s.newest_at else None,
        "handled_up_to": {str(tp.partition): off for tp, off in s.handled_up_to.items()},
    }


# --- show ----------------------------------------------------------------------------------------------
def run_show(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    dead, label = _open(args)
    try:
        with source_errors():
            letters = dead.browse(args.dlq, limit=args.limit if not args.id else 100_000,
                                  include_handled=args.all_records)
            ledger = dead.ledger()
            starts = dead.pending_starts(args.dlq) if args.all_records else {}
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    finally:
        dead.kafka.close()
    if args.id:
        wanted = set(args.id)
        letters = [d for d in letters if {d.event_id, d.position, d.coordinates} & wanted]
        if not letters:
            raise CliError(f"no dead letter {', '.join(args.id)} in {args.dlq}")
    now = time.time()
    docs = [letter_json(d, dead.reason(d), ledger.settled_by(d), now,
                        purged=d.record.offset < starts.get(d.record.tp, 0)) for d in letters]
    if args.json:
        emit_json("dlq-show", {"dlq": args.dlq, "messages": docs}, target=label)
    elif args.id:
        for doc in docs:
            _print_detail(doc)
    else:
        print(table(["POSITION", "AGE", "EVENT ID", "TYPE", "FROM", "APP", "REDRIVES", "STATE", "REASON"],
                    [[d["position"], format_duration(d["age_s"]), d["event_id"], d["type"], d["original"]["topic"],
                      d["app_id"], d["redrive_count"], d["state"], _short(d["reason"])] for d in docs]))
    if isinstance(dead.reasons, connect.LogReasons) and dead.reasons.error:
        print(f"note: failure reasons from the logs are missing: {dead.reasons.error}", file=sys.stderr)
    return int(Exit.OK)


def letter_json(d: DeadLetter, reason: str | None, settled: LedgerEntry | None, now: float,
                purged: bool = False) -> dict[str, Any]:
    """The `dlq-show` message object (console/README.md documents it)."""
    at = d.dead_lettered_at
    return {
        "position": d.position, "partition": d.record.partition, "offset": d.record.offset,
        "timestamp": d.record.timestamp, "age_s": round(now - at, 3) if at else None,
        "key": d.record.key.decode("utf-8", errors="replace") if d.record.key is not None else None,
        "event_id": d.event_id, "type": d.event_type, "cloudevent": d.cloudevent,
        "value": None if d.cloudevent is not None else (d.record.value or b"").decode("utf-8", errors="replace"),
        "headers": {k: v.decode("utf-8", errors="replace") for k, v in d.record.headers},
        "original": {"topic": d.original_topic, "partition": d.original_partition, "offset": d.original_offset},
        "app_id": d.app_id, "attempts": d.attempts, "reason": reason, "redrive_count": d.redrive_count,
        "state": "purged" if purged else letter_state(d, settled),
        "redrive": None if settled is None else {
            "by": settled.by, "at": settled.at, "dead_letter": settled.coordinates, "topic": settled.target_topic,
            "partition": settled.target_partition, "offset": settled.target_offset},
    }


def _print_detail(doc: dict[str, Any]) -> None:
    original = doc["original"]
    lines = [
        f"dead letter   {doc['position']} ({doc['state']}, redrive count {doc['redrive_count']})",
        f"age           {format_duration(doc['age_s'])}",
        f"from          {original['topic']}[{original['partition']}]@{original['offset']}"
        + (f" (app {doc['app_id']}, attempts {doc['attempts']})" if doc["app_id"] else ""),
        f"reason        {doc['reason'] or '(none recorded; daprd writes none: look in the logs by event id)'}",
        f"key           {doc['key']}",
        f"event         id={doc['event_id']} type={doc['type']}",
    ]
    lines += ["headers"] + [f"  {k}: {v}" for k, v in doc["headers"].items()]
    if doc["cloudevent"] is not None:
        lines += ["cloudevent"] + [f"  {k}: {v if isinstance(v, str) else json.dumps(v)}"
                                   for k, v in doc["cloudevent"].items()]
    else:
        lines.append(f"value         {doc['value']}")
    print("\n".join(lines) + "\n")


def _short(text: str | None, width: int = 60) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 3] + "..."


# --- redrive -------------------------------------------------------------------------------------------
def run_redrive(args: argparse.Namespace) -> int:
    guard_mutation(args, "dlq redrive")
    if args.max_redrives < 1:
        raise CliError("--max-redrives must be at least 1")
    try:
        selection = Selection(ids=frozenset(args.id), event_type=args.event_type, older_than_s=args.older_than,
                              reason=args.reason, everything=args.all)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    dead, label = _open(args)
    try:
        with source_errors():
            plan = dead.plan_redrive(args.dlq, selection, poison_after=args.max_redrives)
            if args.id and not plan:
                raise CliError(f"no dead letter {', '.join(args.id)} in {args.dlq}")
            if args.dry_run or not any(i.action == "redrive" for i in plan):
                return _report_redrive(args, plan, None, label)
            if not args.json:
                _print_plan(plan)
            if not confirm(args, f"redrive {sum(i.action == 'redrive' for i in plan)} message(s) from {args.dlq}?"):
                print("nothing redriven")
                return int(Exit.OK)
            return _report_redrive(args, plan, dead.redrive(plan), label)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    finally:
        dead.kafka.close()


def _report_redrive(args: argparse.Namespace, plan: list[RedrivePlanItem], results: list[RedriveResult] | None,
                    label: str) -> int:
    refused = any(i.action == "refuse" for i in plan) or any(r.outcome != "redriven" for r in results or [])
    if args.json:
        items = [plan_item_json(i) for i in plan]
        for item, result in zip(items, results or [], strict=False):
            item.update({"outcome": result.outcome, "detail": result.detail, "target_offset": result.target_offset})
        emit_json("dlq-redrive", {"dlq": args.dlq, "dry_run": results is None, "items": items}, target=label)
    elif results is None:
        _print_plan(plan)
        if not plan:
            print("nothing to redrive")
        elif args.dry_run:
            print("dry run: nothing was redriven")
    else:
        print(table(["POSITION", "EVENT ID", "OUTCOME", "DETAIL"],
                    [[r.item.letter.position, r.item.letter.event_id, r.outcome, r.detail] for r in results]))
    return int(Exit.PROBLEM if refused else Exit.OK)


def _print_plan(plan: list[RedrivePlanItem]) -> None:
    if plan:
        print(table(["POSITION", "EVENT ID", "TYPE", "ACTION", "WHY"],
                    [[i.letter.position, i.letter.event_id, i.letter.event_type, i.action, i.reason] for i in plan]))


def plan_item_json(i: RedrivePlanItem) -> dict[str, Any]:
    return {"position": i.letter.position, "event_id": i.letter.event_id, "type": i.letter.event_type,
            "action": i.action, "reason": i.reason, "target_topic": i.target_topic,
            "target_partition": i.target_partition, "redrive_count": i.redrive_count, "with": i.with_letter}


# --- purge ---------------------------------------------------------------------------------------------
def run_purge(args: argparse.Namespace) -> int:
    guard_mutation(args, "dlq purge")
    dead, label = _open(args)
    try:
        with source_errors():
            plan = dead.plan_purge(args.dlq, older_than_s=args.older_than)
            what = f"{plan.count} dead letter(s) of {args.dlq}" + (
                f" older than {format_duration(args.older_than)}" if args.older_than else "")
            if args.dry_run or not plan.count:
                result = None
            elif confirm(args, f"purge {what}?"):
                result = dead.purge(plan)
            else:
                print("nothing purged")
                return int(Exit.OK)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    finally:
        dead.kafka.close()
    if args.json:
        emit_json("dlq-purge", {"dlq": args.dlq, "dry_run": result is None, "count": plan.count,
                                "before": {str(tp.partition): off for tp, off in plan.before.items()},
                                "mode": result.mode if result else None,
                                "detail": result.detail if result else None}, target=label)
    else:
        print(_purge_line(what, plan.count, result))
    return int(Exit.OK)


def _purge_line(what: str, count: int, result: PurgeResult | None) -> str:
    if not count:
        return "nothing to purge"
    if result is None:
        return f"dry run: would purge {what}"
    return f"purged {what}: {result.detail}"
