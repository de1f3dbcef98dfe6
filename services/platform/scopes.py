"""The OAuth scopes the services check, and what each lets a token do.

One list for the services that check them and for whatever mints tokens: the identity provider
must issue these names, and the sandbox mints tokens with them (`todo-console sandbox token
--scope`, which refuses any other). A module of its own, without the JWT machinery, so the
console's command line reads it without importing that.
"""

from __future__ import annotations

TASKS_READ = "tasks:read"
TASKS_WRITE = "tasks:write"
AUDIT_READ = "audit:read"

SCOPES: dict[str, str] = {
    TASKS_READ: "read your own tasks, their live updates (websocket) and your own audit entries",
    TASKS_WRITE: "create, change, complete and delete your own tasks",
    AUDIT_READ: "read every user's audit entries (operators)",
}
USER_SCOPES: tuple[str, ...] = (TASKS_READ, TASKS_WRITE)
"""What an end user's token carries; operators' views need more (AUDIT_READ)."""
