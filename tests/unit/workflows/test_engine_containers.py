"""Containers run by the engine: an iteration's items in order or in parallel (item order kept),
its per-item error handling and output flattening, its list limit; a loop's variables, break
conditions (before the first round and after each), loop_end and max count; the assigner's
operations on loop variables; each child's run recorded on the container and its events
forwarded. The code children run on an in-memory CodeRunner of the sandbox's contract."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.workflows.configs import MAX_ITERATION_ITEMS
from shared.workflows.definition import WorkflowDocument
from shared.workflows.engine.runner import NodeRunner
from shared.workflows.sandbox.ports import CodeRaised, CodeRequest
from shared.workflows.validation import validate_document
from tests.support.engine_runs import DrivenRun, document, drive, ports


class Code:
    """A CodeRunner answering ``main(inputs)`` (which may raise a CodeError), counting the
    calls and how many ran at once."""

    def __init__(self, main: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.main = main
        self.calls: list[dict[str, Any]] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def run(self, request: CodeRequest) -> dict[str, Any]:
        with self._lock:
            self.calls.append(dict(request.inputs))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return self.main(dict(request.inputs))
        finally:
            with self._lock:
                self.running -= 1


def upper(inputs: dict[str, Any]) -> dict[str, Any]:
    if inputs["item"] == "bad":
        raise CodeRaised("ValueError: bad item", error_type="ValueError", line=2)
    return {"result": inputs["item"].upper()}


def iteration(*, code_outputs: dict[str, str] | None = None, items_type: str = "array[string]",
              output: list[str] | None = None, **config: Any) -> WorkflowDocument:
    """start(items) -> iteration[it_start -> work(code: item, index)] -> end(out = it.output)."""
    return document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "items", "type": items_type}]}},
        {"id": "it", "type": "iteration", "config": {
            "start_node_id": "it_start", "iterator_selector": ["start", "items"],
            "output_selector": output or ["work", "result"], **config}},
        {"id": "it_start", "type": "iteration_start", "parent_id": "it"},
        {"id": "work", "type": "code", "parent_id": "it", "config": {
            "code": "def main(item, index): ...",
            "variables": [{"variable": "item", "value_selector": ["it", "item"]},
                          {"variable": "index", "value_selector": ["it", "index"]}],
            "outputs": {name: {"type": kind} for name, kind in (code_outputs or {"result": "string"}).items()}}},
        {"id": "end", "type": "end", "config": {"outputs": [{"variable": "out", "value_selector": ["it", "output"]}]}},
    ], [("start", "it"), ("it_start", "work"), ("it", "end")])


def run(doc: WorkflowDocument, code: Code, inputs: dict[str, Any]) -> DrivenRun:
    assert validate_document(doc) == []
    return drive(doc, NodeRunner(ports(code_runner=code)), inputs)


def events(run_: DrivenRun, kind: str) -> list[dict[str, Any]]:
    return [data for event, data in run_.events if event == kind]


# --- iteration ---------------------------------------------------------------------------------

def test_items_run_in_order_and_the_outputs_keep_it() -> None:
    code = Code(upper)
    result = run(iteration(), code, {"items": ["a", "b", "c"]})
    assert result.status == "succeeded"
    assert result.outputs == {"out": ["A", "B", "C"]}
    assert [call["item"] for call in code.calls] == ["a", "b", "c"]
    assert [call["index"] for call in code.calls] == [0, 1, 2]
    # The container is one node of the run: its children are not.
    assert result.order == ["start", "it", "end"]
    assert events(result, "iteration.next") == [{"node_id": "it", "index": i} for i in range(3)]
    # Every child's run is recorded on the container, by item.
    children = result.results["it"].children
    assert [(child.node_id, child.index) for child in children] == [
        ("it_start", 0), ("work", 0), ("it_start", 1), ("work", 1), ("it_start", 2), ("work", 2)]
    assert children[1].to_dict() | {"elapsed_ms": 0} == {
        "node_id": "work", "index": 0, "status": "succeeded", "handle": "source",
        "inputs": {"item": "a", "index": 0}, "outputs": {"result": "A"}, "error": None, "attempts": 1, "tokens": 0,
        "elapsed_ms": 0}
    # The children's events carry their container and item.
    started = [data for data in events(result, "node_started") if data["node_id"] == "work"]
    assert [(data["container_id"], data["index"]) for data in started] == [("it", 0), ("it", 1), ("it", 2)]
    assert result.results["it"].inputs == {"start.items": ["a", "b", "c"]}


def test_parallel_items_run_at_most_parallel_nums_at_once_and_keep_item_order() -> None:
    def slow(inputs: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.02 * (8 - inputs["index"]))  # later items finish first
        return {"result": inputs["item"].upper()}

    code = Code(slow)
    items = list("abcdefgh")
    result = run(iteration(is_parallel=True, parallel_nums=3), code, {"items": items})
    assert result.outputs == {"out": [item.upper() for item in items]}
    assert 2 <= code.most_at_once <= 3
    assert sorted(data["index"] for data in events(result, "iteration.next")) == list(range(8))
    assert [child.index for child in result.results["it"].children] == sorted(
        child.index for child in result.results["it"].children)


@pytest.mark.parametrize("parallel", [False, True])
def test_an_item_failing_terminates_the_iteration_by_default(parallel: bool) -> None:
    code = Code(upper)
    result = run(iteration(is_parallel=parallel, parallel_nums=1 if parallel else 10), code,
                 {"items": ["a", "bad", "c", "d"]})
    assert result.status == "failed"
    error = result.results["it"].error
    assert error is not None and error.code == "iteration_item_failed"
    assert error.message.startswith("Item 1 failed at node 'work': ValueError: bad item (code_raised)")
    assert error.details["index"] == 1 and error.details["node_id"] == "work"
    assert error.details["error"]["code"] == "code_raised"
    # The items after the failed one do not run (one at a time here).
    assert [call["item"] for call in code.calls] == ["a", "bad"]
    assert [child.result.status for child in result.results["it"].children if child.node_id == "work"] == [
        "succeeded", "failed"]


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize(("mode", "expected"), [("continue-on-error", ["A", None, "C"]),
                                                ("remove-abnormal-output", ["A", "C"])])
def test_an_item_failing_is_none_or_left_out_as_the_mode_says(parallel: bool, mode: str, expected: list[Any]) -> None:
    result = run(iteration(error_handle_mode=mode, is_parallel=parallel), Code(upper), {"items": ["a", "bad", "c"]})
    assert result.status == "succeeded"
    assert result.outputs == {"out": expected}
    # The item's failure stays recorded on its child.
    failed = [child for child in result.results["it"].children if child.result.status == "failed"]
    assert [(child.node_id, child.index) for child in failed] == [("work", 1)]


def pair(inputs: dict[str, Any]) -> dict[str, Any]:
    if inputs["item"] == 0:
        raise CodeRaised("no zero")
    return {"result": [inputs["item"], inputs["item"] * 2]}


@pytest.mark.parametrize(("flatten", "expected"), [(True, [1, 2, 2, 4, 3, 6]), (False, [[1, 2], [2, 4], [3, 6]])])
def test_list_outputs_are_flattened_as_dify_does(flatten: bool, expected: list[Any]) -> None:
    doc = iteration(code_outputs={"result": "array[number]"}, items_type="array[number]", flatten_output=flatten)
    assert run(doc, Code(pair), {"items": [1, 2, 3]}).outputs == {"out": expected}


def test_flattening_drops_the_none_of_a_failed_item_and_leaves_scalars_alone() -> None:
    doc = iteration(code_outputs={"result": "array[number]"}, items_type="array[number]",
                    error_handle_mode="continue-on-error")
    assert run(doc, Code(pair), {"items": [1, 0, 3]}).outputs == {"out": [1, 2, 3, 6]}
    strings = iteration(error_handle_mode="continue-on-error")
    assert run(strings, Code(upper), {"items": ["a", "bad"]}).outputs == {"out": ["A", None]}


def test_an_empty_or_absent_list_answers_an_empty_output_without_running_a_child() -> None:
    code = Code(upper)
    assert run(iteration(), code, {"items": []}).outputs == {"out": []}
    assert run(iteration(), code, {}).outputs == {"out": []}
    assert code.calls == []


def test_a_list_longer_than_the_limit_fails_naming_it_before_any_item_runs() -> None:
    code = Code(upper)
    result = run(iteration(), code, {"items": ["a"] * (MAX_ITERATION_ITEMS + 1)})
    error = result.results["it"].error
    assert result.status == "failed" and error is not None and error.code == "iteration_too_many_items"
    assert f"at most {MAX_ITERATION_ITEMS}" in error.message
    assert error.details == {"items": MAX_ITERATION_ITEMS + 1, "max_items": MAX_ITERATION_ITEMS}
    assert code.calls == [] and result.results["it"].children == ()


def test_a_value_that_is_not_a_list_fails_the_iteration() -> None:
    doc = iteration(items_type="object")
    result = drive(doc, NodeRunner(ports(code_runner=Code(upper))), {"items": {"a": 1}})
    error = result.results["it"].error
    assert error is not None and error.code == "iteration_input_invalid" and "not a list" in error.message


def test_a_child_handled_by_its_error_strategy_does_not_fail_its_item() -> None:
    doc = iteration()
    doc.node("work").error_strategy = "default_value"
    doc.node("work").default_value = {"result": "?"}
    result = run(doc, Code(upper), {"items": ["a", "bad"]})
    assert result.status == "succeeded" and result.outputs == {"out": ["A", "?"]}


def test_a_timed_out_iteration_stops_before_its_next_child() -> None:
    def slow(inputs: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.15)
        return {"result": "x"}

    code = Code(slow)
    doc = iteration()
    doc.node("it").timeout_s = 1
    result = drive(doc, NodeRunner(ports(code_runner=code)), {"items": ["a"] * 30})
    error = result.results["it"].error
    assert result.status == "failed" and error is not None and error.code == "node_timeout"
    time.sleep(0.4)
    ran = len(code.calls)
    time.sleep(0.4)
    assert len(code.calls) == ran < 30


# --- loop --------------------------------------------------------------------------------------

def loop(children: list[dict[str, Any]], edges: list[tuple[str, ...]], *, variables: list[dict[str, Any]],
         breaks: list[dict[str, Any]] | None = None, count: int = 10, logical_operator: str = "and",
         outputs: dict[str, list[str]] | None = None) -> WorkflowDocument:
    """start -> loop[lp_start -> children...] -> end(the loop's variables and loop_round)."""
    names = [variable["label"] for variable in variables]
    return document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "word"}]}},
        {"id": "lp", "type": "loop", "config": {
            "start_node_id": "lp_start", "loop_count": count, "loop_variables": variables,
            "break_conditions": breaks or [], "logical_operator": logical_operator}},
        {"id": "lp_start", "type": "loop_start", "parent_id": "lp"},
        *({"parent_id": "lp", **child} for child in children),
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": name, "value_selector": selector} for name, selector in (outputs or {
                **{name: ["lp", name] for name in names}, "rounds": ["lp", "loop_round"]}).items()]}},
    ], [("start", "lp"), *edges, ("lp", "end")])


NUM = {"label": "num", "var_type": "number", "value": 1}


def add(value: Any, target: str = "num", operation: str = "+=", input_type: str = "constant",
        node_id: str = "add") -> dict[str, Any]:
    return {"id": node_id, "type": "assigner", "config": {"items": [
        {"variable_selector": ["lp", target], "operation": operation, "input_type": input_type, "value": value}]}}


def at_least(value: int) -> dict[str, Any]:
    return {"variable_selector": ["lp", "num"], "comparison_operator": "≥", "value": str(value)}


def test_a_loop_runs_until_its_break_conditions_hold_after_a_round() -> None:
    doc = loop([add(1)], [("lp_start", "add")], variables=[NUM], breaks=[at_least(5)])
    result = run(doc, Code(upper), {})
    assert result.outputs == {"num": 5, "rounds": 4}
    assert events(result, "loop.next") == [{"node_id": "lp", "index": i} for i in range(4)]
    children = result.results["lp"].children
    assert [(child.node_id, child.index) for child in children if child.node_id == "add"] == [
        ("add", 0), ("add", 1), ("add", 2), ("add", 3)]
    # The assigner records each round's value before its change.
    assert [child.result.inputs["lp.num"] for child in children if child.node_id == "add"] == [1, 2, 3, 4]
    assert result.results["lp"].inputs == {"loop_count": 10, "num": 1}


def test_conditions_that_hold_already_run_no_round() -> None:
    doc = loop([add(1)], [("lp_start", "add")], variables=[{**NUM, "value": 7}], breaks=[at_least(5)])
    result = run(doc, Code(upper), {})
    assert result.outputs == {"num": 7, "rounds": 0}
    assert result.results["lp"].children == () and events(result, "loop.next") == []


def test_a_loop_stops_at_its_count() -> None:
    doc = loop([add(1)], [("lp_start", "add")], variables=[NUM], count=4)
    assert run(doc, Code(upper), {}).outputs == {"num": 5, "rounds": 4}


def test_or_conditions_and_a_condition_that_cannot_compare_counts_as_not_holding() -> None:
    never = {"variable_selector": ["lp", "num"], "comparison_operator": "contains", "value": "x"}
    doc = loop([add(1)], [("lp_start", "add")], variables=[NUM], breaks=[never], count=3)
    # Validation says so (a number contains nothing); the run goes on as Dify's does.
    assert [p.code for p in validate_document(doc)] == ["type_mismatch"]
    assert drive(doc, NodeRunner(ports()), {}).outputs == {"num": 4, "rounds": 3}
    doc = loop([add(1)], [("lp_start", "add")], variables=[NUM], breaks=[never, at_least(3)], logical_operator="or")
    assert drive(doc, NodeRunner(ports()), {}).outputs == {"num": 3, "rounds": 2}


def test_a_loop_end_reached_ends_the_loop_after_its_round() -> None:
    check = {"id": "check", "type": "if_else", "config": {"cases": [
        {"case_id": "done", "conditions": [at_least(3)]}]}}
    doc = loop([add(1), check, {"id": "stop", "type": "loop_end"},
                add(10, node_id="after")],
               [("lp_start", "add"), ("add", "check"), ("check", "done", "stop"), ("check", "false", "after")],
               variables=[NUM])
    result = run(doc, Code(upper), {})
    # Round 0: 1 + 1 = 2 < 3, so the else branch adds 10 (12); round 1: 13 ≥ 3 reaches loop_end.
    assert result.outputs == {"num": 13, "rounds": 2}
    ran = [(child.node_id, child.index) for child in result.results["lp"].children if child.node_id != "lp_start"]
    assert ran == [("add", 0), ("check", 0), ("after", 0), ("add", 1), ("check", 1), ("stop", 1)]


def test_variables_start_from_run_values_and_children_read_them_and_upstream_nodes() -> None:
    variables = [NUM, {"label": "words", "var_type": "array[string]", "value_type": "variable",
                       "value": ["start", "tags"]}]
    doc = loop([add(["start", "word"], "words", "append", "variable", "push"), add(1)],
               [("lp_start", "push"), ("push", "add")], variables=variables, breaks=[at_least(3)])
    doc.node("start").config = {"variables": [{"variable": "word"}, {"variable": "tags", "type": "array[string]"}]}
    result = run(doc, Code(upper), {"word": "hi", "tags": ["x"]})
    assert result.outputs == {"num": 3, "words": ["x", "hi", "hi"], "rounds": 2}


def test_a_child_failing_fails_the_loop_naming_the_round() -> None:
    doc = loop([add(0, operation="/=", node_id="divide")], [("lp_start", "divide")], variables=[NUM])
    # Validation refuses the constant 0; the run checks it too.
    assert [p.code for p in validate_document(doc)] == ["invalid_assignment"]
    result = drive(doc, NodeRunner(ports()), {})
    error = result.results["lp"].error
    assert result.status == "failed" and error is not None and error.code == "loop_round_failed"
    assert error.message.startswith("Round 0 failed at node 'divide': Item 0 (lp.num): a variable cannot be divided")
    assert error.details["error"]["code"] == "assigner_invalid_operation"


def test_each_round_starts_its_children_afresh_but_keeps_the_variables() -> None:
    tpl = {"id": "tpl", "type": "template", "config": {"template": "{{ n }}", "variables": [
        {"variable": "n", "value_selector": ["lp", "num"]}]}}
    doc = loop([tpl, add(1)], [("lp_start", "tpl"), ("tpl", "add")], variables=[NUM], count=3,
               outputs={"num": ["lp", "num"]})
    result = run(doc, Code(upper), {})
    assert result.outputs == {"num": 4}
    assert [child.result.outputs for child in result.results["lp"].children if child.node_id == "tpl"] == [
        {"output": "1"}, {"output": "2"}, {"output": "3"}]


# --- assigner ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("var_type", "initial", "operation", "value", "expected"), [
    ("number", 6, "over-write", 2, 2), ("number", 6, "set", 2.5, 2.5), ("number", 6, "-=", 2, 4),
    ("number", 6, "*=", 2, 12), ("number", 6, "/=", 4, 1.5), ("number", 6, "clear", None, 0),
    ("string", "a", "set", "b", "b"), ("string", "a", "clear", None, ""),
    ("object", {"a": 1}, "set", '{"b": 2}', {"b": 2}), ("object", {"a": 1}, "clear", None, {}),
    ("boolean", True, "set", False, False),
    ("array[number]", [1, 2, 3], "remove-first", None, [2, 3]),
    ("array[number]", [1, 2, 3], "remove-last", None, [1, 2]),
    ("array[number]", [], "remove-last", None, []),
    ("array[number]", [1], "clear", None, []),
])
def test_assigner_operations_on_a_constant(var_type: str, initial: Any, operation: str, value: Any,
                                           expected: Any) -> None:
    variable = {"label": "v", "var_type": var_type, "value": initial}
    doc = loop([add(value, "v", operation)], [("lp_start", "add")], variables=[variable], count=1)
    assert validate_document(doc) == []
    assert drive(doc, NodeRunner(ports()), {}).outputs == {"v": expected, "rounds": 1}


@pytest.mark.parametrize(("operation", "source", "expected"), [
    ("over-write", ["b", "c"], ["b", "c"]), ("append", "c", ["a", "c"]), ("extend", ["b", "c"], ["a", "b", "c"]),
    ("append", None, ["a"]),  # a None value leaves the variable as it is, as Dify does
])
def test_assigner_operations_from_a_variable(operation: str, source: Any, expected: list[str]) -> None:
    variable = {"label": "v", "var_type": "array[string]", "value": ["a"]}
    doc = loop([add(["start", "src"], "v", operation, "variable")], [("lp_start", "add")], variables=[variable],
               count=1)
    kind = "string" if operation == "append" else "array[string]"
    doc.node("start").config = {"variables": [{"variable": "src", "type": kind}]}
    assert validate_document(doc) == []
    assert drive(doc, NodeRunner(ports()), {"src": source}).outputs == {"v": expected, "rounds": 1}


def test_a_value_of_the_wrong_type_fails_the_assigner_at_run_time() -> None:
    variable = {"label": "v", "var_type": "array[string]", "value": ["a"]}
    doc = loop([add(["start", "src"], "v", "append", "variable")], [("lp_start", "add")], variables=[variable],
               count=1)
    doc.node("start").config = {"variables": [{"variable": "src", "type": "number"}]}
    result = drive(doc, NodeRunner(ports()), {"src": 3})
    error = result.results["lp"].error
    assert error is not None and error.details["error"]["code"] == "assigner_invalid_operation"
    assert "takes a value of type string" in error.details["error"]["message"]


def test_a_conversation_variable_is_a_clear_error_in_a_workflow() -> None:
    assigner = {"id": "set", "type": "assigner", "config": {"items": [
        {"variable_selector": ["conversation", "answer"], "input_type": "variable", "value": ["start", "word"]}]}}
    doc = document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "word"}]}}, assigner,
        {"id": "end", "type": "end", "config": {"outputs": [{"variable": "w", "value_selector": ["start", "word"]}]}},
    ], [("start", "set"), ("set", "end")])
    [problem] = validate_document(doc)
    assert (problem.node_id, problem.field, problem.code) == (
        "set", "config.items[0].variable_selector", "conversation_variable_unsupported")
    assert "only a chatflow has conversation variables" in problem.message
    result = drive(doc, NodeRunner(ports()), {"word": "hi"})
    error = result.results["set"].error
    assert result.status == "failed" and error is not None and error.code == "assigner_conversation_variable"
    assert "only a chatflow has conversation variables" in error.message
