"""The parameters convention: declarations read by papermill, values refused with the parameter's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.runbooks.catalog import load_runbook
from console.runbooks.model import ParameterError, RunbookError
from console.runbooks.parameters import check, declare, load_parameter_file, parse_assignments, resolve

from .conftest import write_notebook

PARAMETERS = """
    target: str = "sandbox"  # {sandbox, cluster} where it runs
    outage_s: float = 20.0  # [1..300] seconds the broker is frozen
    writes: int = 10  # [1..] writes per second
    dry_run: bool = True  # change nothing
    label: str = ""  # free text
"""


@pytest.fixture
def book(books: Path):
    write_notebook(books, "drill-things", PARAMETERS, "print('hi')")
    return load_runbook("drill-things")


def test_papermill_reads_the_declarations_and_the_convention_adds_types_and_constraints(book) -> None:
    params = {p.name: p for p in book.parameters}
    assert list(params) == ["target", "outage_s", "writes", "dry_run", "label"]
    assert (params["target"].type, params["target"].default, params["target"].choices) == ("str", "sandbox",
                                                                                          ("sandbox", "cluster"))
    assert params["target"].help == "where it runs"
    assert (params["outage_s"].minimum, params["outage_s"].maximum, params["outage_s"].constraint) == (1, 300, "[1..300]")
    assert (params["writes"].minimum, params["writes"].maximum, params["writes"].constraint) == (1, None, "[1..]")
    assert params["dry_run"].default is True
    assert params["label"].constraint == ""
    assert book.title == "A test runbook"
    assert book.summary == "What it is for, in one paragraph."


def test_values_from_the_command_line_are_typed_by_the_declaration(book) -> None:
    values = resolve(book, {"target": "cluster", "outage_s": "2.5", "writes": "3", "dry_run": "no"})
    assert values == {"target": "cluster", "outage_s": 2.5, "writes": 3, "dry_run": False, "label": ""}


def test_values_from_a_yaml_file_keep_their_types(tmp_path: Path, book) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("outage_s: 5\ndry_run: false\nlabel: nightly\n")
    assert resolve(book, load_parameter_file(path)) == {
        "target": "sandbox", "outage_s": 5.0, "writes": 10, "dry_run": False, "label": "nightly"}


@pytest.mark.parametrize(("given", "message"), [
    ({"outage_s": "abc"}, "parameter outage_s: expected a number, got 'abc'"),
    ({"outage_s": "0.5"}, "parameter outage_s: 0.5 is below the minimum of 1"),
    ({"outage_s": "301"}, "parameter outage_s: 301.0 is above the maximum of 300"),
    ({"outage_s": "nan"}, "parameter outage_s: expected a finite number"),
    ({"writes": "2.5"}, "parameter writes: expected a whole number, got '2.5'"),
    ({"writes": 2.5}, "parameter writes: expected a whole number, got float 2.5"),
    ({"dry_run": "maybe"}, "parameter dry_run: expected true or false, got 'maybe'"),
    ({"dry_run": 1}, "parameter dry_run: expected true or false, got int 1"),
    ({"target": "staging"}, "parameter target: 'staging' is not one of {sandbox, cluster}"),
    ({"label": 12}, "parameter label: expected text, got int 12"),
    ({"outage": "5"}, "parameter outage: drill-things has no such parameter (did you mean outage_s?)"),
    ({"zzz": "5"}, "parameter zzz: drill-things has no such parameter (drill-things takes: target, outage_s"),
])
def test_a_bad_value_is_refused_naming_the_parameter(book, given, message) -> None:
    with pytest.raises(ParameterError) as caught:
        resolve(book, given)
    assert str(caught.value).startswith(message)
    assert caught.value.name == next(iter(given))


def test_assignments_need_a_name_and_an_equals_sign() -> None:
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(RunbookError, match="-p expects NAME=VALUE, got 'a'"):
        parse_assignments(["a"])
    with pytest.raises(RunbookError, match="-p expects NAME=VALUE"):
        parse_assignments(["=1"])


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n- b\n", "expected a mapping of parameter names to values"),
    ("a: [1\n", "not valid YAML"),
])
def test_a_bad_parameters_file_is_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError, match=message) as caught:
        load_parameter_file(path)
    assert str(caught.value).startswith(str(path))
    with pytest.raises(RunbookError, match="No such file"):
        load_parameter_file(tmp_path / "absent.yaml")


@pytest.mark.parametrize(("declaration", "message"), [
    (("n", "list", "[]", ""), "declared type 'list' is not one of str, int, float, bool"),
    (("n", "int", "5", "[10..20] too small"), "its default is refused: 5 is below the minimum of 10"),
    (("n", "str", "'x'", "{a, b} choose"), "its default is refused: 'x' is not one of {a, b}"),
    (("n", "str", "'x'", "[1..2] text"), "a [lo..hi] range needs a number type, not str"),
    (("n", "int", "os.getcwd()", ""), "default 'os.getcwd()' is not a literal"),
])
def test_a_bad_declaration_is_refused(declaration, message) -> None:
    with pytest.raises(ParameterError) as caught:
        declare(*declaration)
    assert str(caught.value).startswith(f"parameter n: {message}")


def test_an_undeclared_type_or_a_line_papermill_skips_makes_the_runbook_unloadable(books: Path) -> None:
    write_notebook(books, "no-types", "count = 3  # how many")
    with pytest.raises(RunbookError, match="parameter count: declared type 'None'"):
        load_runbook("no-types")
    write_notebook(books, "two-equals", 'a: str = "x"  # compare with == here\nb: int = 1  # fine')
    with pytest.raises(RunbookError, match="papermill cannot read the declaration of a"):
        load_runbook("two-equals")
    write_notebook(books, "not-assignments", "import os\nb: int = 1  # fine")
    with pytest.raises(RunbookError, match="holds only assignments"):
        load_runbook("not-assignments")


def test_choices_are_typed_like_the_parameter() -> None:
    parameter = declare("workers", "int", "2", "{1, 2, 4} replicas")
    assert parameter.choices == (1, 2, 4)
    assert check(parameter, "4") == 4
    with pytest.raises(ParameterError, match=r"'3' is not one of \{1, 2, 4\}"):
        check(parameter, "3")
