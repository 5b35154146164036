"""if/else: every comparison operator on every kind of value, as Dify's condition processor
treats them (a table), then cases, and/or, references in constants and failures at node level."""

from __future__ import annotations

from typing import Any

import pytest

from shared.workflows.engine.nodes.if_else import ComparisonError, evaluate
from shared.workflows.engine.runner import NodeRunner
from tests.support.engine_runs import document, drive, ports

ERROR = "error"

TABLE: list[tuple[str, Any, Any, bool | str]] = [
    # strings (and lists for contains)
    ("contains", "hello world", "hello", True),
    ("contains", "hi there", "hello", False),
    ("contains", "", "x", False),
    ("contains", None, "x", False),
    ("contains", ["a", "b"], "a", True),
    ("contains", ["a"], "c", False),
    ("contains", 5, "5", ERROR),
    ("contains", {"a": 1}, "a", ERROR),
    ("contains", "abc", 1, ERROR),
    ("not contains", "hello", "x", True),
    ("not contains", "hello", "ell", False),
    ("not contains", "", "x", True),
    ("not contains", None, "x", True),
    ("not contains", ["a"], "a", False),
    ("not contains", 5, "x", ERROR),
    ("start with", "hello", "he", True),
    ("start with", "hello", "lo", False),
    ("start with", "", "x", False),
    ("start with", None, "x", False),
    ("start with", ["a"], "a", ERROR),
    ("end with", "hello", "lo", True),
    ("end with", "hello", "he", False),
    ("end with", None, "x", False),
    ("end with", 12, "2", ERROR),
    ("is", "a", "a", True),
    ("is", "a", "b", False),
    ("is", "", "", True),
    ("is", None, "a", False),
    ("is", 1, "1", ERROR),
    ("is not", "a", "b", True),
    ("is not", "a", "a", False),
    ("is not", None, "a", False),  # Dify: a missing value is neither "is" nor "is not"
    ("is not", ["a"], "a", ERROR),
    ("empty", "", None, True),
    ("empty", [], None, True),
    ("empty", {}, None, True),
    ("empty", 0, None, True),  # Python truthiness, as Dify
    ("empty", False, None, True),
    ("empty", None, None, True),
    ("empty", "x", None, False),
    ("empty", [0], None, False),
    ("not empty", "x", None, True),
    ("not empty", "", None, False),
    ("not empty", [1], None, True),
    ("not empty", 0, None, False),
    ("not empty", None, None, False),
    ("null", None, None, True),
    ("null", "", None, False),
    ("null", 0, None, False),
    ("not null", 0, None, True),
    ("not null", "", None, True),
    ("not null", None, None, False),
    # numbers: the constant is coerced to the variable's kind
    ("=", 1, "1", True),
    ("=", 1, "2", False),
    ("=", 1, 1, True),
    ("=", 1.5, "1.5", True),
    ("=", 2.0, "2", True),
    ("=", 2, "2.5", ERROR),  # int("2.5"), as Dify
    ("=", 2, "two", ERROR),
    ("=", None, "1", False),
    ("=", "1", "1", ERROR),
    ("≠", 1, "2", True),
    ("≠", 1, "1", False),
    ("≠", None, "1", False),
    ("≠", 1.0, "1.5", True),
    (">", 3, "2", True),
    (">", 2, "2", False),
    (">", 2.5, "2.4", True),
    (">", -1, "0", False),
    (">", None, "1", False),
    (">", "3", "2", ERROR),
    (">", 3, "abc", ERROR),
    (">", [3], "2", ERROR),
    ("<", 1, "2", True),
    ("<", 2, "2", False),
    ("<", 1.5, "1.6", True),
    ("≥", 2, "2", True),
    ("≥", 1, "2", False),
    ("≥", 2.5, "2.5", True),
    ("≤", 2, "2", True),
    ("≤", 3, "2", False),
    ("≤", None, "2", False),
    # booleans: the constant is read as JSON or a number
    ("=", True, "true", True),
    ("=", True, "false", False),
    ("=", True, "1", True),
    ("=", False, "0", True),
    ("=", False, 0, True),
    ("=", True, "yes", ERROR),
    ("≠", False, "true", True),
    ("is", True, "true", True),
    ("is", False, "true", False),
    ("is not", True, "false", True),
    ("contains", [True, False], "true", True),
    ("contains", [False], "true", False),
    ("in", True, ["true", "false"], True),
    # lists
    ("in", "a", ["a", "b"], True),
    ("in", "c", ["a", "b"], False),
    ("in", 2, [1, 2], True),
    ("in", "", ["a"], False),
    ("in", None, ["a"], False),
    ("in", "a", "a", ERROR),
    ("not in", "c", ["a", "b"], True),
    ("not in", "a", ["a"], False),
    ("not in", "", ["a"], True),
    ("not in", "a", "abc", ERROR),
    ("all of", ["a", "b", "c"], ["a", "b"], True),
    ("all of", ["a"], ["a", "b"], False),
    ("all of", [], ["a"], False),
    ("all of", None, ["a"], False),
    ("all of", "abc", ["a", "b"], True),  # membership in a string is a substring test
    ("all of", ["a"], "a", ERROR),
    # A boolean is not a number to an ordering operator (Python's bool is an int).
    (">", True, "0", ERROR),
    ("≤", False, "1", ERROR),
]


@pytest.mark.parametrize(("operator", "value", "expected", "result"), TABLE,
                         ids=[f"{op} {value!r} {expected!r}" for op, value, expected, _ in TABLE])
def test_operator(operator: str, value: Any, expected: Any, result: bool | str) -> None:
    if result == ERROR:
        with pytest.raises(ComparisonError):
            evaluate(operator, value, expected)
    else:
        assert evaluate(operator, value, expected) is result


def if_else(cases: list[dict[str, Any]], inputs: dict[str, Any], variables: list[dict[str, Any]] | None = None):
    doc = document([
        {"id": "start", "type": "start", "config": {"variables": variables or [
            {"variable": name, "type": "number" if isinstance(value, int | float) else "string"}
            for name, value in inputs.items()]}},
        {"id": "if", "type": "if_else", "config": {"cases": cases}},
        *({"id": f"end_{case['case_id']}", "type": "end"} for case in cases),
        {"id": "end_else", "type": "end"},
    ], [("start", "if"), *(("if", case["case_id"], f"end_{case['case_id']}") for case in cases),
        ("if", "false", "end_else")])
    return drive(doc, NodeRunner(ports()), inputs)


def cond(variable: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"variable_selector": ["start", variable], "comparison_operator": operator, "value": value}


def test_the_first_case_that_holds_picks_its_branch() -> None:
    cases = [{"case_id": "big", "conditions": [cond("n", ">", "100")]},
             {"case_id": "positive", "conditions": [cond("n", ">", "0")]}]
    for n, branch in ((500, "big"), (5, "positive"), (-5, "false")):
        run = if_else(cases, {"n": n})
        assert run.status == "succeeded"
        assert run.results["if"].handle == branch
        expected_case = None if branch == "false" else branch
        assert run.results["if"].outputs == {"result": branch != "false", "selected_case_id": expected_case}
        assert run.order[-1] == f"end_{'else' if branch == 'false' else branch}"
        assert run.skipped() == {f"end_{b}" for b in ("big", "positive", "else")} - {run.order[-1]}


def test_and_or_stop_once_the_answer_is_known() -> None:
    # The second condition would fail ("abc" > 1 is not a number comparison); it is never reached.
    failing = cond("s", ">", "1")
    cases = [{"case_id": "any", "logical_operator": "or", "conditions": [cond("s", "contains", "a"), failing]},
             {"case_id": "all", "logical_operator": "and", "conditions": [cond("s", "contains", "z"), failing]}]
    assert if_else(cases, {"s": "abc"}).results["if"].handle == "any"
    assert if_else([cases[1]], {"s": "abc"}).results["if"].handle == "false"
    both = [{"case_id": "both", "logical_operator": "and",
             "conditions": [cond("s", "start with", "a"), cond("s", "end with", "c")]}]
    assert if_else(both, {"s": "abc"}).results["if"].handle == "both"
    assert if_else(both, {"s": "abd"}).results["if"].handle == "false"


def test_constants_may_reference_other_variables() -> None:
    cases = [{"case_id": "over", "conditions": [cond("n", ">", "{{#start.limit#}}")]}]
    assert if_else(cases, {"n": 5, "limit": "3"}).results["if"].handle == "over"
    assert if_else(cases, {"n": 5, "limit": "7"}).results["if"].handle == "false"


def test_a_comparison_that_cannot_be_made_fails_the_node_and_says_which() -> None:
    run = if_else([{"case_id": "c", "conditions": [cond("s", ">", "2")]}], {"s": "three"})
    assert run.status == "failed"
    error = run.results["if"].error
    assert error is not None and error.code == "if_else_invalid_comparison"
    assert "start.s" in error.message and "number" in error.message
    assert run.results["if"].inputs == {"start.s": "three"}


def test_a_variable_that_has_no_value_is_null() -> None:
    # An optional input left out is None; a selector the pool has nothing for reads as None too.
    for selector in (["start", "optional"], ["start", "undeclared"]):
        cases = [{"case_id": "missing", "conditions": [{"variable_selector": selector, "comparison_operator": "null"}]}]
        run = if_else(cases, {"s": "x"}, variables=[{"variable": "s"}, {"variable": "optional"}])
        assert run.results["if"].handle == "missing"
        assert run.results["if"].inputs == {".".join(selector): None}
