"""A runbook's parameters: the declaration convention of its `parameters` cell, and checking values against it.

papermill reads each assignment of the cell tagged `parameters` (`papermill.inspect_notebook`): the name, the
annotation, the default as source text and the comment after it. On top of that, one small convention
(notebooks/README.md) says what a value may be:

    outage_s: float = 20.0  # [1..300] how long the broker stays frozen, in seconds
    target: str = "sandbox"  # {sandbox, cluster} where the smoke test runs
    dry_run: bool = True  # plan only: change nothing

- the annotation is the type, one of str, int, float, bool (required: a value from the command line is text,
  and only the declared type says what it should become);
- a comment starting with `{a, b}` allows only those values; one starting with `[lo..hi]` bounds a number
  (inclusive; either end may be left out: `[1..]`);
- the rest of the comment is the help text. papermill skips a line with a second `=`, so a comment never has one.

Values are checked here, before a kernel starts or a notebook is written: a bad one is refused with a message
that starts with the parameter's name.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import yaml

from console.runbooks.model import Parameter, ParameterError, ParameterType, Runbook, RunbookError

TYPES: tuple[str, ...] = get_args(ParameterType)
_CHOICES = re.compile(r"^\{(?P<items>[^{}]*)\}\s*(?P<rest>.*)$")
_RANGE = re.compile(r"^\[(?P<low>[-+0-9.eE]*)\.\.(?P<high>[-+0-9.eE]*)\]\s*(?P<rest>.*)$")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def declare(name: str, type_name: str, default_source: str, comment: str) -> Parameter:
    """One declaration as papermill read it, turned into a Parameter; the default must obey it."""
    if type_name not in TYPES:
        raise ParameterError(name, f"declared type {type_name!r} is not one of {', '.join(TYPES)} "
                                   "(annotate it: `name: int = 3`)")
    try:
        default = ast.literal_eval(default_source)
    except (ValueError, SyntaxError):
        raise ParameterError(name, f"default {default_source!r} is not a literal") from None
    help_text, choices, minimum, maximum = comment.strip(), None, None, None
    if match := _CHOICES.match(help_text):
        items = [item.strip() for item in match["items"].split(",") if item.strip()]
        if not items:
            raise ParameterError(name, "{} allows no value at all")
        choices = tuple(_from_text(name, type_name, item) for item in items)
        help_text = match["rest"]
    elif match := _RANGE.match(help_text):
        if type_name not in ("int", "float"):
            raise ParameterError(name, f"a [lo..hi] range needs a number type, not {type_name}")
        minimum = _bound(name, match["low"])
        maximum = _bound(name, match["high"])
        help_text = match["rest"]
    parameter = Parameter(name, type_name, default, help_text, choices, minimum, maximum)  # type: ignore[arg-type]
    try:
        return Parameter(name, parameter.type, check(parameter, default), help_text, choices, minimum, maximum)
    except ParameterError as exc:
        raise ParameterError(name, f"its default is refused: {exc.problem}") from None


def _bound(name: str, text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ParameterError(name, f"range bound {text!r} is not a number") from None


def check(parameter: Parameter, value: Any) -> Any:
    """`value` as the declared type, if the declaration accepts it; text is parsed (`-p`, a form field)."""
    name = parameter.name
    typed = _from_text(name, parameter.type, value) if isinstance(value, str) else _typed(parameter, value)
    if parameter.choices is not None and typed not in parameter.choices:
        raise ParameterError(name, f"{value!r} is not one of {parameter.constraint}")
    if parameter.minimum is not None and typed < parameter.minimum:
        raise ParameterError(name, f"{typed!r} is below the minimum of {parameter.minimum:g}")
    if parameter.maximum is not None and typed > parameter.maximum:
        raise ParameterError(name, f"{typed!r} is above the maximum of {parameter.maximum:g}")
    return typed


def _from_text(name: str, type_name: str, text: str) -> Any:
    if type_name == "str":
        return text
    stripped = text.strip()
    if type_name == "bool":
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ParameterError(name, f"expected true or false, got {text!r}")
    if type_name == "int":
        try:
            return int(stripped)
        except ValueError:
            raise ParameterError(name, f"expected a whole number, got {text!r}") from None
    try:
        number = float(stripped)
    except ValueError:
        raise ParameterError(name, f"expected a number, got {text!r}") from None
    if not math.isfinite(number):
        raise ParameterError(name, f"expected a finite number, got {text!r}")
    return number


def _typed(parameter: Parameter, value: Any) -> Any:
    """A value that already has a type (a YAML file, the dashboard, a default): right type or refused."""
    name, wanted = parameter.name, parameter.type
    if wanted == "bool" and isinstance(value, bool):
        return value
    if wanted == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if wanted == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ParameterError(name, f"expected a finite number, got {value!r}")
        return float(value)
    if wanted == "str" and isinstance(value, str):
        return value
    words = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false"}
    raise ParameterError(name, f"expected {words[wanted]}, got {type(value).__name__} {value!r}")


def resolve(runbook: Runbook, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value for a run: the defaults, overridden by `given`, each one checked.

    Raises ParameterError naming the first unknown or refused parameter; nothing has run yet.
    """
    known = [p.name for p in runbook.parameters]
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" ({runbook.name} takes: {', '.join(known)})"
            raise ParameterError(name, f"{runbook.name} has no such parameter{hint}")
    return {p.name: check(p, given[p.name]) if p.name in given else p.default for p in runbook.parameters}


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`-p key=value` pairs from the command line, as text (resolve() types them)."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise RunbookError(f"-p expects NAME=VALUE, got {pair!r}")
        values[name.strip()] = value
    return values


def load_parameter_file(path: Path) -> dict[str, Any]:
    """A YAML mapping of parameter values (`-f params.yaml`); its values keep their YAML types."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RunbookError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise RunbookError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise RunbookError(f"{path}: expected a mapping of parameter names to values")
    return data
