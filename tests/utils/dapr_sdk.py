"""Set the Dapr Python SDK's settings by name.

The SDK reads its configuration from `dapr.conf.settings`, an object whose attributes are resolved
at run time from the environment (`__getattr__`), so mypy cannot see them; assigning them here, by
name, keeps the tests type-checked without silencing the checker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dapr.conf import settings

_UNSET = object()


def set_sdk_settings(**values: object) -> None:
    """Assign SDK settings for the rest of the process (a value set here wins over the environment)."""
    for name, value in values.items():
        setattr(settings, name, value)


@contextmanager
def sdk_settings(**values: object) -> Iterator[None]:
    """Assign SDK settings for the duration of a block, then put back what was there."""
    previous = {name: vars(settings).get(name, _UNSET) for name in values}
    set_sdk_settings(**values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is _UNSET:
                vars(settings).pop(name, None)
            else:
                setattr(settings, name, value)


@contextmanager
def sdk_settings_restored() -> Iterator[None]:
    """Put every SDK setting back as it was when the block began. The SDK's settings are process-wide and
    `DaprGateway` assigns them (its ports, a deadline of a few seconds on every gRPC call): without this, a
    test that built a gateway leaves the next test in the same worker a deadline it never asked for (a
    publish to a dead broker then ended in DEADLINE_EXCEEDED instead of the outbound policy's error)."""
    before = dict(vars(settings))
    try:
        yield
    finally:
        vars(settings).clear()
        vars(settings).update(before)
