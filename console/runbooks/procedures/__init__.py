"""What the runbooks do, as importable and tested functions: one module per procedure, plus what they share.

The notebooks in notebooks/ only call these and show what they return (STYLE.md, notebooks/): a runbook's
logic is tested in tests/console/runbooks/ like any other code, and the notebook stays a readable script.
Failures a person can act on are `ProcedureError`: one line, shown as the failing cell's error. What a
procedure verified is an `Outcome`, which the notebook records as a check (and its seconds as a figure).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One verified statement, before the notebook records it as a check."""

    name: str
    ok: bool
    detail: str
    seconds: float | None = None  # how long the evidence took to appear, when that is a figure


class ProcedureError(Exception):
    """A procedure cannot go on (no sandbox running, a URL that does not answer): one line saying why."""
