"""The list operator run by the engine: filter (the if/else operators, on items or on an
object's field), extract (first, last, nth, by reference), order and limit in Dify's order,
and the failures it reports instead of answering a list of another type."""

from __future__ import annotations

from typing import Any

from shared.workflows.engine.runner import NodeRunner
from shared.workflows.validation import validate_document
from tests.support.engine_runs import DrivenRun, document, drive, ports

ORDERS = [{"id": "a1", "customer": {"name": "Ada"}, "total": 120, "status": "paid"},
          {"id": "b2", "customer": {"name": "Bob"}, "total": 35.5, "status": "open"},
          {"id": "c3", "customer": {"name": "Cy"}, "total": 80, "status": "paid"},
          {"id": "d4", "customer": {}, "total": 80, "status": "refunded"}]


def run(items: Any, items_type: str, *, strategy: str = "fail", **config: Any) -> DrivenRun:
    doc = document([
        {"id": "start", "type": "start", "config": {"variables": [
            {"variable": "items", "type": items_type}, {"variable": "n", "type": "number"},
            {"variable": "word", "type": "string"}]}},
        {"id": "lo", "type": "list_operator", "error_strategy": strategy,
         "config": {"variable": ["start", "items"], "var_type": items_type, **config}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": name, "value_selector": ["lo", name]} for name in ("result", "first_record", "last_record")]}},
    ], [("start", "lo"), ("lo", "end")])
    assert validate_document(doc) == []
    return drive(doc, NodeRunner(ports()), {"items": items, "n": 2, "word": "pa"})


def on(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"enabled": True, "conditions": list(conditions)}


def test_objects_filtered_on_fields_sorted_and_cut() -> None:
    result = run(ORDERS, "array[object]",
                 filter_by=on({"key": "status", "comparison_operator": "start with", "value": "{{#start.word#}}"},
                              {"key": "total", "comparison_operator": "≥", "value": "80"}),
                 order_by={"enabled": True, "key": "total", "value": "asc"}, limit={"enabled": True, "size": 5})
    assert result.status == "succeeded"
    assert [item["id"] for item in result.outputs["result"]] == ["c3", "a1"]
    assert (result.outputs["first_record"]["id"], result.outputs["last_record"]["id"]) == ("c3", "a1")
    assert result.results["lo"].inputs == {"start.items": ORDERS}


def test_nested_fields_and_missing_ones_sort_last_either_way() -> None:
    for direction, expected in (("asc", ["a1", "b2", "c3", "d4"]), ("desc", ["c3", "b2", "a1", "d4"])):
        result = run(ORDERS, "array[object]", order_by={"enabled": True, "key": "customer.name", "value": direction})
        assert [item["id"] for item in result.outputs["result"]] == expected
    kept = run(ORDERS, "array[object]", filter_by=on({"key": "customer.name", "comparison_operator": "null"}))
    assert [item["id"] for item in kept.outputs["result"]] == ["d4"]


def test_extract_keeps_one_item_by_position_from_either_end_or_by_reference() -> None:
    items = ["alpha", "beta", "gamma"]
    for serial, expected in (("1", "alpha"), ("-1", "gamma"), ("{{#start.n#}}", "beta"), ("-3", "alpha")):
        result = run(items, "array[string]", extract_by={"enabled": True, "serial": serial})
        assert result.outputs == {"result": [expected], "first_record": expected, "last_record": expected}


def test_operations_run_in_difys_order_filter_extract_order_limit() -> None:
    # Filter keeps [5, 9, 7, 8]; extract takes the 2nd (9); order and limit then see one item.
    result = run([1, 5, 9, 3, 7, 8], "array[number]", filter_by=on({"comparison_operator": ">", "value": "4"}),
                 extract_by={"enabled": True, "serial": "2"}, order_by={"enabled": True, "value": "asc"},
                 limit={"enabled": True, "size": 1})
    assert result.outputs["result"] == [9]
    ranked = run([1, 5, 9, 3, 7, 8], "array[number]", order_by={"enabled": True, "value": "desc"},
                 limit={"enabled": True, "size": 3})
    assert ranked.outputs == {"result": [9, 8, 7], "first_record": 9, "last_record": 7}


def test_numbers_compare_with_fractional_constants_as_dify_does() -> None:
    result = run([1, 2, 3, 4], "array[number]", filter_by=on({"comparison_operator": "<", "value": "2.5"}))
    assert result.outputs["result"] == [1, 2]
    equal = run([2, 2.5, 3], "array[number]", filter_by=on({"comparison_operator": "=", "value": 2.5}))
    assert equal.outputs["result"] == [2.5]


def test_string_and_boolean_operators_are_the_if_else_ones() -> None:
    words = ["apple", "", "banana", "cherry", "apricot"]
    assert run(words, "array[string]", filter_by=on({"comparison_operator": "contains", "value": "an"})
               ).outputs["result"] == ["banana"]
    assert run(words, "array[string]", filter_by=on({"comparison_operator": "not empty"})
               ).outputs["result"] == ["apple", "banana", "cherry", "apricot"]
    assert run(words, "array[string]", filter_by=on({"comparison_operator": "not in", "value": ["apple", ""]})
               ).outputs["result"] == ["banana", "cherry", "apricot"]
    assert run([True, False, True], "array[boolean]", filter_by=on({"comparison_operator": "is", "value": "true"})
               ).outputs["result"] == [True, True]


def test_an_empty_list_answers_an_empty_result() -> None:
    result = run([], "array[string]", filter_by=on({"comparison_operator": "contains", "value": "x"}),
                 order_by={"enabled": True})
    assert result.outputs == {"result": [], "first_record": None, "last_record": None}


def test_failures_say_what_is_wrong() -> None:
    cases = [
        ((None, "array[string]"), {}, "list_operator_invalid_input", "has no value"),
        ((["a", 1], "array[string]"), {}, "list_operator_invalid_input", "not the array[string]"),
        ((["a", "b"], "array[string]"), {"extract_by": {"enabled": True, "serial": "3"}},
         "list_operator_index_out_of_range", "from 1 to 2"),
        (([], "array[string]"), {"extract_by": {"enabled": True, "serial": "1"}},
         "list_operator_index_out_of_range", "empty list"),
        ((["a"], "array[string]"), {"extract_by": {"enabled": True, "serial": "{{#start.word#}}"}},
         "list_operator_invalid_serial", "'pa'"),
        (([{"v": 1}, {"v": "x"}], "array[object]"), {"order_by": {"enabled": True, "key": "v"}},
         "list_operator_invalid_order", "field 'v'"),
        (([{"v": "x"}], "array[object]"), {"filter_by": on({"key": "v", "comparison_operator": ">", "value": 1})},
         "list_operator_invalid_condition", "field 'v'"),
    ]
    for (items, items_type), config, code, message in cases:
        result = run(items, items_type, **config)
        error = result.results["lo"].error
        assert result.status == "failed", (code, result.outputs)
        assert error is not None and error.code == code and message in error.message, error


def test_a_failure_under_default_values_continues_the_run() -> None:
    result = run(["a"], "array[string]", strategy="default_value",
                 extract_by={"enabled": True, "serial": "5"})
    assert result.status == "succeeded"
    assert result.outputs == {"result": None, "first_record": None, "last_record": None}
    assert result.results["lo"].outputs["error_type"] == "list_operator_index_out_of_range"
