"""if_else: cases in order; the first whose conditions hold (``and``/``or``, evaluated
left to right and stopping once the answer is known) picks its ``case_id`` handle, none picks
``false``. Outputs ``result`` (whether a case held) and ``selected_case_id``.

Each operator treats values exactly as Dify's condition processor does
(``api/core/workflow/utils/condition/processor.py``), so an imported workflow branches the
same way:

- strings: ``contains``/``not contains`` (also lists: membership), ``start with``/``end with``,
  ``is``/``is not`` (also booleans); ``empty``/``not empty`` are Python truthiness (``""``,
  ``[]``, ``{}``, ``0``, ``False`` and None are empty); ``null``/``not null`` test None.
- numbers: ``=``, ``≠``, ``>``, ``<``, ``≥``, ``≤`` coerce the constant to the variable's kind:
  ``int(constant)`` for an integer, ``float(constant)`` for a float (so an integer variable
  against ``"2.5"`` is an error, as in Dify); ``=``/``≠`` also take booleans.
- booleans (a boolean variable or a list of booleans): the constant is read as JSON
  (``"true"``, ``"false"``, ``"1"``, ``"0"``) or a number, and compared as a boolean.
- lists: ``in``/``not in`` (the variable among the constant's items), ``all of`` (every item
  of the constant in the variable).
- a variable of another kind than the operator takes fails the node
  (``if_else_invalid_comparison``) instead of choosing a branch silently. A variable with no
  value in the run (its node did not run) is None, as older Dify versions read it.

String constants may hold ``{{#node.field#}}`` references, rendered before comparing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.workflows.configs import Case, Condition, IfElseConfig
from shared.workflows.definition import ELSE_HANDLE
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, selector_key
from shared.workflows.variables import VariablePool


class ComparisonError(ValueError):
    """The values cannot be compared with this operator."""


def _to_bool(value: Any) -> bool:
    if isinstance(value, int):  # booleans included
        return bool(value)
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except ValueError:
            loaded = None
        if isinstance(loaded, int):
            return bool(loaded)
    raise ComparisonError(f"{value!r} is not a boolean (use true, false, 1 or 0)")


def _contains(value: Any, expected: Any) -> bool:
    if not value:
        return False
    if not isinstance(value, str | list):
        raise ComparisonError("contains takes a string or an array")
    return expected in value


def _not_contains(value: Any, expected: Any) -> bool:
    if not value:
        return True
    if not isinstance(value, str | list):
        raise ComparisonError("not contains takes a string or an array")
    return expected not in value


def _start_with(value: Any, expected: Any) -> bool:
    if not value:
        return False
    if not isinstance(value, str):
        raise ComparisonError("start with takes a string")
    return value.startswith(expected)


def _end_with(value: Any, expected: Any) -> bool:
    if not value:
        return False
    if not isinstance(value, str):
        raise ComparisonError("end with takes a string")
    return value.endswith(expected)


def _is(value: Any, expected: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, str | bool):
        raise ComparisonError("is takes a string or a boolean")
    return bool(value == expected)


def _is_not(value: Any, expected: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, str | bool):
        raise ComparisonError("is not takes a string or a boolean")
    return bool(value != expected)


def _number(value: Any, expected: Any, *, booleans: bool) -> tuple[Any, Any] | None:
    """The variable and the constant coerced to the variable's kind; None when the variable is
    None (the comparison is false)."""
    if value is None:
        return None
    kinds: tuple[type, ...] = (int, float, bool) if booleans else (int, float)
    # bool is an int to Python; to an ordering operator it is not a number.
    if not isinstance(value, kinds) or (isinstance(value, bool) and not booleans):
        raise ComparisonError("the operator takes a number" + (" or a boolean" if booleans else ""))
    if isinstance(value, bool) and booleans:
        return value, bool(expected)
    try:
        return value, (int(expected) if isinstance(value, int) else float(expected))
    except (TypeError, ValueError) as exc:
        kind = "an integer" if isinstance(value, int) else "a number"
        raise ComparisonError(f"{expected!r} is not {kind}, as the variable is") from exc


def _compare(test: Callable[[Any, Any], bool], *, booleans: bool = False) -> Callable[[Any, Any], bool]:
    def run(value: Any, expected: Any) -> bool:
        pair = _number(value, expected, booleans=booleans)
        return pair is not None and test(*pair)
    return run


def _in(value: Any, expected: Any) -> bool:
    if not value:
        return False
    if not isinstance(expected, list):
        raise ComparisonError("in takes an array of values")
    return value in expected


def _not_in(value: Any, expected: Any) -> bool:
    if not value:
        return True
    if not isinstance(expected, list):
        raise ComparisonError("not in takes an array of values")
    return value not in expected


def _all_of(value: Any, expected: Any) -> bool:
    if not isinstance(expected, list):
        raise ComparisonError("all of takes an array of values")
    if not value:
        return False
    return all(item in value for item in expected)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "contains": _contains,
    "not contains": _not_contains,
    "start with": _start_with,
    "end with": _end_with,
    "is": _is,
    "is not": _is_not,
    "empty": lambda value, _expected: not value,
    "not empty": lambda value, _expected: bool(value),
    "=": _compare(lambda a, b: a == b, booleans=True),
    "≠": _compare(lambda a, b: a != b, booleans=True),
    ">": _compare(lambda a, b: a > b),
    "<": _compare(lambda a, b: a < b),
    "≥": _compare(lambda a, b: a >= b),
    "≤": _compare(lambda a, b: a <= b),
    "null": lambda value, _expected: value is None,
    "not null": lambda value, _expected: value is not None,
    "in": _in,
    "not in": _not_in,
    "all of": _all_of,
}


def evaluate(operator: str, value: Any, expected: Any) -> bool:
    """One condition, on the variable's value and the (rendered) constant."""
    is_boolean = isinstance(value, bool) or (isinstance(value, list) and bool(value)
                                             and all(isinstance(item, bool) for item in value))
    if is_boolean and expected is not None:
        expected = [_to_bool(item) for item in expected] if isinstance(expected, list) else _to_bool(expected)
    try:
        return OPERATORS[operator](value, expected)
    except TypeError as exc:  # e.g. a number sought in a string
        raise ComparisonError(str(exc)) from exc


def _condition_holds(condition: Condition, inputs: dict[str, Any], pool: VariablePool) -> bool:
    expected = condition.value
    if isinstance(expected, str):
        expected = pool.render(expected)
    return evaluate(condition.comparison_operator, inputs.get(selector_key(condition.variable_selector)), expected)


def _case_holds(case: Case, inputs: dict[str, Any], pool: VariablePool) -> bool:
    for condition in case.conditions:
        try:
            holds = _condition_holds(condition, inputs, pool)
        except ComparisonError as exc:
            raise NodeFailure("if_else_invalid_comparison",
                              f"Case {case.case_id!r}: {selector_key(condition.variable_selector)} "
                              f"{condition.comparison_operator} {condition.value!r}: {exc}") from exc
        if case.logical_operator == "and" and not holds:
            return False
        if case.logical_operator == "or" and holds:
            return True
    return case.logical_operator == "and"


def resolve(call: NodeCall[IfElseConfig]) -> dict[str, Any]:
    return {selector_key(condition.variable_selector): call.pool.get_or_none(condition.variable_selector)
            for case in call.config.cases for condition in case.conditions}


def execute(call: NodeCall[IfElseConfig], inputs: dict[str, Any]) -> NodeOutput:
    for case in call.config.cases:
        if _case_holds(case, inputs, call.pool):
            return NodeOutput({"result": True, "selected_case_id": case.case_id}, handle=case.case_id)
    return NodeOutput({"result": False, "selected_case_id": None}, handle=ELSE_HANDLE)


EXECUTOR = NodeExecutor(resolve, execute)
