"""list_operator: a list variable filtered, one item extracted, sorted and cut, in Dify's order
(filter → extract → order → limit). Outputs ``result`` (the list, of the node's ``var_type``),
``first_record`` and ``last_record`` (None when the result is empty).

- **Filter**: each enabled condition keeps the items it holds for, one after the other (all
  must hold). The operators are the if/else node's (:mod:`.if_else`), applied to the item, or,
  for a list of objects, to the item's field ``key`` names (a dotted path reaches nested fields;
  a missing field is None). String values may hold ``{{#node.field#}}`` references. As in Dify,
  a numeric constant is compared as a number whatever the item (``"2.5"`` against ``3`` holds
  for ``<``, never fails because the item is an integer), and ``in``/``not in`` are plain
  membership in the value's list (an empty item is in a list that holds ``""``).
- **Extract** keeps one item: ``serial`` 1-based as in Dify, or negative from the end (``-1``
  the last); a reference is rendered and read as an integer. A position outside the list fails
  the node (``list_operator_index_out_of_range``), as in Dify.
- **Order**: the items (or their ``key`` field) ascending or descending; items without the
  field (None) go last either way. Values that do not compare (a number and a text) fail the
  node (``list_operator_invalid_order``).
- **Limit**: the first ``size`` items.

An absent variable (None) fails the node; an empty list gives an empty result. A value that is
not a list of the declared ``var_type`` fails the node (``list_operator_invalid_input``) rather
than answering a result of another type than declared.
"""

from __future__ import annotations

from typing import Any

from shared.workflows.configs import ListFilterCondition, ListOperatorConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, selector_key
from shared.workflows.engine.nodes.if_else import ComparisonError, evaluate
from shared.workflows.validation import NUMERIC_OPERATORS, value_matches
from shared.workflows.variables import VariablePool

_MISSING = object()


def resolve(call: NodeCall[ListOperatorConfig]) -> dict[str, Any]:
    return {selector_key(call.config.variable): call.pool.get_or_none(call.config.variable)}


def field_of(item: Any, key: str) -> Any:
    """The item's field at ``key`` (``a.b`` for nested objects; list indexes as digits), None
    when absent."""
    value = item
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _expected(condition: ListFilterCondition, pool: VariablePool) -> Any:
    value = condition.value
    if isinstance(value, str):
        value = pool.render(value)
    if condition.comparison_operator in NUMERIC_OPERATORS and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise NodeFailure("list_operator_invalid_condition",
                              f"Filter {condition.comparison_operator!r}: {value!r} is not a number") from None
    return value


def _holds(condition: ListFilterCondition, operand: Any, expected: Any) -> bool:
    operator = condition.comparison_operator
    if operator in NUMERIC_OPERATORS and isinstance(operand, int) and not isinstance(operand, bool):
        # Dify compares against float(constant): an integer item meets a fractional constant.
        operand = float(operand)
    if operator in ("in", "not in") and isinstance(expected, list):
        # Plain membership, as Dify's list operator has it: an empty item is in a list holding "".
        return (operand in expected) == (operator == "in")
    try:
        return evaluate(operator, operand, expected)
    except ComparisonError as exc:
        where = f"field {condition.key!r} " if condition.key else ""
        raise NodeFailure("list_operator_invalid_condition",
                          f"Filter {where}{operator} {condition.value!r} on {operand!r}: {exc}") from exc


def _filter(call: NodeCall[ListOperatorConfig], items: list[Any]) -> list[Any]:
    objects = call.config.var_type == "array[object]"
    for condition in call.config.filter_by.conditions:
        expected = _expected(condition, call.pool)
        items = [item for item in items
                 if _holds(condition, field_of(item, condition.key) if objects else item, expected)]
    return items


def _position(call: NodeCall[ListOperatorConfig], size: int) -> int:
    serial = call.config.extract_by.serial
    text = call.pool.render(serial).strip()
    try:
        position = int(float(text)) if text and float(text).is_integer() else int(text)
    except ValueError:
        raise NodeFailure("list_operator_invalid_serial",
                          f"extract_by.serial {serial!r} rendered {text!r}, which is not a position: give an "
                          f"integer (1 for the first item, -1 for the last)") from None
    if position == 0 or abs(position) > size:
        raise NodeFailure("list_operator_index_out_of_range",
                          f"Item {position} was asked of a list of {size} item(s): positions run from 1 to {size} "
                          f"(or -1 to -{size} from the end)" if size else
                          f"Item {position} was asked of an empty list")
    return position - 1 if position > 0 else size + position


def _order(call: NodeCall[ListOperatorConfig], items: list[Any]) -> list[Any]:
    order = call.config.order_by
    objects = call.config.var_type == "array[object]"
    keyed = [(field_of(item, order.key) if objects else item, item) for item in items]
    present = [pair for pair in keyed if pair[0] is not None]
    absent = [item for value, item in keyed if value is None]
    try:
        present.sort(key=lambda pair: pair[0], reverse=order.value == "desc")
    except TypeError as exc:
        where = f"field {order.key!r}" if objects else "items"
        raise NodeFailure("list_operator_invalid_order",
                          f"The {where} cannot be sorted: they mix values that do not compare ({exc}); sort on a "
                          "field that holds one kind of value") from exc
    return [item for _value, item in present] + absent


def execute(call: NodeCall[ListOperatorConfig], inputs: dict[str, Any]) -> NodeOutput:
    config = call.config
    items = inputs[selector_key(config.variable)]
    where = selector_key(config.variable)
    if items is None:
        raise NodeFailure("list_operator_invalid_input",
                          f"{where} has no value in this run: the list operator needs a list")
    if not value_matches(items, config.var_type):
        kind = "a list holding other items" if isinstance(items, list) else f"a {type(items).__name__}"
        raise NodeFailure("list_operator_invalid_input",
                          f"{where} is {kind}, not the {config.var_type} the node declares: fix var_type or "
                          "the variable")
    if config.filter_by.enabled:
        items = _filter(call, items)
    if config.extract_by.enabled:
        items = [items[_position(call, len(items))]]
    if config.order_by.enabled:
        items = _order(call, items)
    if config.limit.enabled:
        items = items[:config.limit.size]
    return NodeOutput({"result": items, "first_record": items[0] if items else None,
                       "last_record": items[-1] if items else None})


EXECUTOR = NodeExecutor(resolve, execute)
