"""Kubernetes resource quantities as numbers: CPU in millicores, memory and storage in MiB / GiB."""

from __future__ import annotations

import re
from decimal import Decimal

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, int | Decimal] = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "m": Decimal("0.001"),
}
_QTY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([A-Za-z]*)$")


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def to_decimal(value: str | float) -> Decimal:
    """A quantity ("250m", "1.5Gi", "2", 3) as a plain number in base units."""
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QTY.match(str(value).strip())
    if not match:
        raise QuantityError(f"not a quantity: {value!r}")
    number, suffix = match.groups()
    if suffix in _BINARY:
        return Decimal(number) * _BINARY[suffix]
    if suffix in _DECIMAL:
        return Decimal(number) * _DECIMAL[suffix]
    raise QuantityError(f"unknown quantity suffix in {value!r}")


def cpu_millis(value: str | float | None) -> int:
    """CPU in millicores (rounded up, as the scheduler does)."""
    if value in (None, ""):
        return 0
    return int((to_decimal(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def mem_mib(value: str | float | None) -> float:
    """Memory (bytes quantity) in MiB."""
    if value in (None, ""):
        return 0.0
    return float(to_decimal(value) / 2**20)


def storage_gib(value: str | float | None) -> float:
    """Storage (bytes quantity) in GiB."""
    if value in (None, ""):
        return 0.0
    return float(to_decimal(value) / 2**30)
