"""The one rule for 'is anything wrong': worst first, oldest first, warnings and errors are problems."""

from __future__ import annotations

from console.model.findings import Finding, Severity, is_problem, ordered, worst


def f(severity: Severity, subject: str, since: float | None = None) -> Finding:
    return Finding(severity, "lag", subject, f"{subject} is {severity.label}", since=since)


def test_worst_first_then_the_longest_standing() -> None:
    found = [f(Severity.WARN, "a", 30), f(Severity.ERROR, "b", 20), f(Severity.ERROR, "c", 10),
             f(Severity.INFO, "d"), f(Severity.WARN, "e")]
    assert [x.subject for x in ordered(found)] == ["c", "b", "a", "e", "d"]
    assert worst(found) is Severity.ERROR


def test_only_warnings_and_errors_are_problems() -> None:
    assert not is_problem([])
    assert not is_problem([f(Severity.INFO, "x")])
    assert is_problem([f(Severity.INFO, "x"), f(Severity.WARN, "y")])
    assert worst([]) is Severity.INFO


def test_json_names_the_severity() -> None:
    assert f(Severity.ERROR, "worker", 5.0).to_dict() == {
        "severity": "error", "area": "lag", "subject": "worker", "message": "worker is error",
        "since": 5.0, "hint": None, "view": None}
