"""What changed between two reads of the supervisor's state.json, as lines `up` prints while it waits.

`up` used to print "starting ..." and then nothing until everything was ready; a start that takes
15 s on a loaded machine looked hung, and a process crash-looping during start-up was only seen at
the timeout. The supervisor already records each step in state.json: this turns the differences
into sentences.
"""

from __future__ import annotations

from typing import Any


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Lines for the steps taken between the two states: broker up, topics made, processes started,
    crashed and restarted, ready. Processes that took the same step together share a line."""
    lines: list[str] = []
    broker, was = after.get("broker") or {}, before.get("broker") or {}
    if broker.get("alive") and not was.get("alive"):
        restarted = " again" if was.get("started_at") else ""
        lines.append(f"broker {broker.get('bootstrap')} ({broker.get('mode')}) ready{restarted}")
    topics = after.get("topics") or []
    if topics and not before.get("topics"):
        created = sum(1 for t in topics if t["status"] == "created")
        lines.append(f"topics: {created} created, {len(topics) - created} already there (kustomize/base)")
    old = before.get("processes") or {}
    now = after.get("processes") or {}
    started = [name for name, proc in now.items() if proc.get("started_at") and not old.get(name, {}).get("started_at")]
    if started:
        lines.append("started: " + ", ".join(started))
    for name, proc in now.items():
        if proc.get("restarts", 0) > old.get(name, {}).get("restarts", 0):
            lines.append(f"{name} exited with code {proc.get('last_exit')} and was restarted "
                         f"(restart {proc['restarts']}; `todo-console sandbox logs {name}` says why)")
    ready = [name for name, proc in now.items() if proc.get("ready") and not old.get(name, {}).get("ready")]
    if ready:
        lines.append("ready: " + ", ".join(ready))
    return lines
