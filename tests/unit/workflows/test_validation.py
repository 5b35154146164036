"""Whole-document validation: every rule reports its problem at its location (node id +
field), a document with several problems reports them all, and run inputs are checked
against the start node's variables. Also: the committed JSON Schema is the generated one."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared.workflows.definition import MAX_DEFINITION_BYTES, MAX_NODES, WorkflowDocument
from shared.workflows.errors import WorkflowInputInvalid, WorkflowInvalid
from shared.workflows.schema import document_schema, render
from shared.workflows.validation import (
    Problem,
    check_document,
    field_path,
    input_schema,
    validate_document,
    validate_inputs,
)

KB = "0190f7a4-8a8b-7c3d-9e0f-123456789abc"
ROOT = Path(__file__).resolve().parents[3]


# -- building documents ------------------------------------------------------------------------
def start(*variables: dict[str, Any], node_id: str = "start") -> dict[str, Any]:
    return {"id": node_id, "type": "start", "config": {"variables": list(variables)}}


def end(node_id: str = "end", **outputs: list[str]) -> dict[str, Any]:
    return {"id": node_id, "type": "end",
            "config": {"outputs": [{"variable": name, "value_selector": sel} for name, sel in outputs.items()]}}


def template(node_id: str, text: str = "hi", **variables: list[str]) -> dict[str, Any]:
    return {"id": node_id, "type": "template",
            "config": {"template": text,
                       "variables": [{"variable": name, "value_selector": sel} for name, sel in variables.items()]}}


def llm(node_id: str, *texts: str, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "llm",
            "config": {"prompt_template": [{"role": "user", "text": t} for t in texts or ("hi",)], **extra}}


def http(node_id: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "http_request", "config": {"url": "https://example.com", **config}}


def if_else(node_id: str, *conditions: dict[str, Any], case_id: str = "yes") -> dict[str, Any]:
    return {"id": node_id, "type": "if_else",
            "config": {"cases": [{"case_id": case_id, "conditions": list(conditions)}]}}


def condition(selector: list[str], operator: str, value: Any = None) -> dict[str, Any]:
    return {"variable_selector": selector, "comparison_operator": operator, "value": value}


def edge(source: str, target: str, handle: str = "source") -> dict[str, Any]:
    return {"source": source, "target": target, "source_handle": handle}


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    """The nodes in a line, in order."""
    return {"nodes": list(nodes), "edges": [edge(a["id"], b["id"]) for a, b in itertools.pairwise(nodes)]}


QUERY = {"variable": "query", "type": "string", "required": True}


def problems(document: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    return [(p.node_id, p.field, p.code) for p in validate_document(document)]


def codes(document: dict[str, Any]) -> set[str]:
    return {p.code for p in validate_document(document)}


# -- a valid document --------------------------------------------------------------------------
def test_a_document_that_can_run_has_no_problems_and_check_document_answers_it_parsed() -> None:
    document = chain(start(QUERY), template("t", "{{ q }}", q=["start", "query"]),
                     end(out=["t", "output"], q=["start", "query"]))
    assert validate_document(document) == []
    parsed = check_document(document)
    assert isinstance(parsed, WorkflowDocument)
    assert validate_document(parsed) == []
    assert check_document(parsed) is parsed


def test_check_document_raises_one_422_listing_every_problem_with_its_location() -> None:
    document = chain(start(QUERY), template("t", "x", q=["ghost", "x"]), end(out=["t", "nope"]))
    with pytest.raises(WorkflowInvalid) as caught:
        check_document(document)
    error = caught.value
    assert (error.status, error.code) == (422, "workflow_invalid")
    assert error.details["problems"] == [
        {"node_id": "t", "field": "config.variables[0].value_selector", "code": "unknown_node_reference",
         "message": "ghost.x: there is no node 'ghost'"},
        {"node_id": "end", "field": "config.outputs[0].value_selector", "code": "unknown_output",
         "message": "t.nope: node 't' has no output 'nope'; its outputs are output"},
    ]
    assert "t.config.variables[0].value_selector" in error.message and "(and 1 more)" in error.message


def test_a_document_with_many_problems_reports_all_of_them() -> None:
    document = {
        "nodes": [
            start(QUERY),
            if_else("branch", condition(["start", "query"], ">", "abc")),
            template("a", "x", v=["b", "output"]),  # b is on the other branch
            template("b", "x", v=["sys", "files"]),
            http("h", url="{{#start.nope#}}"),  # unreachable
            {"id": "bad", "type": "code", "config": {"code": ""}},
            template("c1"), template("c2"),
            end(out=["a", "output"]),
        ],
        "edges": [edge("start", "branch"), edge("branch", "a", "yes"), edge("branch", "b", "maybe"),
                  edge("a", "end"), edge("b", "end"), edge("end", "ghost"), edge("start", "bad"), edge("bad", "ghost"),
                  edge("start", "c1"), edge("c1", "c2"), edge("c2", "c1")],
    }
    found = problems(document)
    for expected in [
        ("branch", "config.cases[0].conditions[0].variable_selector", "type_mismatch"),
        ("branch", "config.cases[0].conditions[0].value", "invalid_condition_value"),
        ("a", "config.variables[0].value_selector", "not_upstream"),
        ("b", "config.variables[0].value_selector", "unknown_sys_variable"),
        ("h", "config.url", "unknown_output"),
        ("h", "", "unreachable_node"),
        ("bad", "config.code", "invalid_config"),
        ("bad", "config.outputs", "invalid_config"),
        (None, "edges[2].source_handle", "invalid_source_handle"),
        (None, "edges[5].target", "unknown_node"),
        (None, "edges[7].target", "unknown_node"),
        ("end", "", "end_has_outgoing"),
        ("c1", "", "cycle"),
    ]:
        assert expected in found, expected
    assert len(found) == 13


# -- the document's shape ----------------------------------------------------------------------
def test_shape_errors_are_located_by_node_id_and_field() -> None:
    document = {"nodes": [start(), {"id": "x", "type": "robot"}, {"id": "bad id!", "type": "end"},
                          {"id": "t", "type": "template", "timeout_s": 0}],
                "edges": [{"source": "start"}]}
    found = problems(document)
    assert ("x", "type", "unknown_node_type") in found
    assert (None, "nodes[2].id", "invalid_field") in found
    assert ("t", "timeout_s", "invalid_field") in found
    assert (None, "edges[0].target", "invalid_field") in found
    message = next(p.message for p in validate_document(document) if p.code == "unknown_node_type")
    assert "'robot'" in message and "variable_aggregator" in message and "loop" in message


def test_limits_on_nodes_and_on_the_documents_size() -> None:
    many = {"nodes": [template(f"n{i}") for i in range(MAX_NODES + 1)], "edges": []}
    assert problems(many) == [(None, "nodes", "too_many_nodes")]
    big = chain(start(), template("t", "x" * MAX_DEFINITION_BYTES), end(out=["t", "output"]))
    found = problems(big)
    assert found[0] == (None, "", "definition_too_large")
    assert ("t", "config.template", "invalid_config") in found  # and the template's own limit
    assert validate_document(WorkflowDocument.model_validate(big))[0].code == "definition_too_large"


def test_each_nodes_config_is_checked_for_its_type() -> None:
    document = chain(start(), http("h", url="", method="FETCH"), llm("m", model={"temperature": 5}),
                     end(out=["h", "body"]))
    found = problems(document)
    assert ("h", "config.url", "invalid_config") in found
    assert ("h", "config.method", "invalid_config") in found
    assert ("m", "config.model.temperature", "invalid_config") in found


def test_node_ids_are_unique() -> None:
    document = chain(start(), template("t"), template("t"), end(out=["t", "output"]))
    assert ("t", "id", "duplicate_node_id") in problems(document)


# -- start, end, reachability, cycles ----------------------------------------------------------
def test_exactly_one_start_without_incoming_edges() -> None:
    assert (None, "nodes", "missing_start") in problems(chain(template("t"), end(out=["t", "output"])))
    two = {"nodes": [start(), start(node_id="again"), end()], "edges": [edge("start", "end"), edge("again", "end")]}
    assert problems(two) == [("again", "type", "multiple_starts")]
    looped = chain(start(), template("t"), end(out=["t", "output"]))
    looped["edges"].append(edge("t", "start"))
    found = problems(looped)
    assert ("start", "", "start_has_incoming") in found
    assert ("start", "", "cycle") in found


def test_an_end_node_reachable_from_the_start() -> None:
    assert problems(chain(start(), template("t"))) == [(None, "nodes", "missing_end")]
    unreachable = {"nodes": [start(), template("t"), end(out=["t", "output"])], "edges": [edge("start", "t")]}
    assert problems(unreachable) == [("end", "", "unreachable_node"), (None, "nodes", "no_reachable_end")]


def test_every_node_is_reachable_from_the_start() -> None:
    document = chain(start(), template("t"), end(out=["t", "output"]))
    document["nodes"].append(template("island"))
    assert problems(document) == [("island", "", "unreachable_node")]


def test_cycles_are_refused_with_the_nodes_on_them() -> None:
    document = chain(start(), template("a"), template("b"), template("c"), end(out=["c", "output"]))
    document["edges"].append(edge("c", "a"))
    document["edges"].append(edge("b", "b"))
    found = validate_document(document)
    cycles = [p for p in found if p.code == "cycle"]
    assert len(cycles) == 1
    assert cycles[0].node_id == "a"
    assert "a → b → c → a" in cycles[0].message


def test_edges_name_existing_nodes() -> None:
    document = chain(start(), end())
    document["edges"].append(edge("ghost", "end"))
    document["edges"].append(edge("start", "nowhere"))
    found = problems(document)
    assert (None, "edges[1].source", "unknown_node") in found
    assert (None, "edges[2].target", "unknown_node") in found


# -- handles and error strategies --------------------------------------------------------------
def _branching(handle: str, *, strategy: str = "fail") -> dict[str, Any]:
    return {"nodes": [start(QUERY), {**if_else("if", condition(["start", "query"], "contains", "a")),
                                     "error_strategy": strategy}, end()],
            "edges": [edge("start", "if"), edge("if", "end", handle)]}


@pytest.mark.parametrize("handle", ["yes", "false"])
def test_an_if_else_leaves_by_its_case_ids_or_false(handle: str) -> None:
    assert problems(_branching(handle)) == []


@pytest.mark.parametrize("handle", ["source", "no", "fail-branch"])
def test_other_handles_of_an_if_else_are_refused(handle: str) -> None:
    found = validate_document(_branching(handle))
    assert [(p.field, p.code) for p in found] == [("edges[1].source_handle", "invalid_source_handle")]
    assert "'yes', 'false'" in found[0].message


def test_fail_branch_only_under_the_fail_branch_strategy_and_then_required() -> None:
    plain = chain(start(), http("h"), end(out=["h", "body"]))
    plain["edges"].append(edge("h", "end", "fail-branch"))
    found = validate_document(plain)
    assert [(p.field, p.code) for p in found] == [("edges[2].source_handle", "invalid_source_handle")]
    assert "fail_branch" in found[0].message

    missing = chain(start(), {**http("h"), "error_strategy": "fail_branch"}, end(out=["h", "body"]))
    assert problems(missing) == [("h", "error_strategy", "missing_fail_branch")]

    handled = chain(start(), {**http("h"), "error_strategy": "fail_branch"}, end(out=["h", "body"]))
    handled["nodes"].append(end("failed", message=["h", "error_message"]))
    handled["edges"].append(edge("h", "failed", "fail-branch"))
    assert problems(handled) == []


def test_default_values_name_declared_outputs_with_values_of_their_type() -> None:
    node = {**http("h"), "error_strategy": "default_value",
            "default_value": {"status_code": "oops", "body": "fallback", "nothing": 1}}
    found = problems(chain(start(), node, end(out=["h", "body"])))
    assert found == [("h", "default_value.status_code", "invalid_default_value"),
                     ("h", "default_value.nothing", "unknown_default_output")]
    good = {**node, "default_value": {"status_code": 599, "body": "fallback", "headers": {}}}
    assert problems(chain(start(), good, end(out=["h", "body"], why=["h", "error_message"]))) == []


def test_error_outputs_exist_only_under_a_strategy_that_continues() -> None:
    document = chain(start(), http("h"), end(out=["h", "error_message"]))
    assert problems(document) == [("end", "config.outputs[0].value_selector", "unknown_output")]


@pytest.mark.parametrize("node_type", ["start", "end"])
def test_start_and_end_nodes_cannot_have_an_error_strategy(node_type: str) -> None:
    document = chain(start(), end())
    document["nodes"][0 if node_type == "start" else 1]["error_strategy"] = "default_value"
    assert problems(document) == [(node_type, "error_strategy", "unsupported_error_strategy")]


# -- references --------------------------------------------------------------------------------
# Every place a selector or template lives, with a reference to a node that does not exist.
GHOST = "{{#ghost.x#}}"
REFERENCE_PLACES: list[tuple[dict[str, Any], str]] = [
    (llm("n", f"say {GHOST}"), "config.prompt_template[0].text"),
    (llm("n", context={"enabled": True, "variable_selector": ["ghost", "x"]}), "config.context.variable_selector"),
    (http("n", url=f"https://x.test/{GHOST}"), "config.url"),
    (http("n", headers=[{"key": "X", "value": GHOST}]), "config.headers[0].value"),
    (http("n", headers=[{"key": GHOST, "value": "v"}]), "config.headers[0].key"),
    (http("n", params=[{"key": "q", "value": GHOST}]), "config.params[0].value"),
    (http("n", body={"type": "json", "data": '{"a": "' + GHOST + '"}'}), "config.body.data"),
    (http("n", body={"type": "form-data", "data": [{"key": "f", "value": GHOST}]}), "config.body.data[0].value"),
    (http("n", authorization={"type": "api-key", "api_key": GHOST}), "config.authorization.api_key"),
    (if_else("n", condition(["ghost", "x"], "empty")), "config.cases[0].conditions[0].variable_selector"),
    (if_else("n", condition(["start", "q"], "is", GHOST)), "config.cases[0].conditions[0].value"),
    (if_else("n", condition(["start", "q"], "in", ["a", GHOST])), "config.cases[0].conditions[0].value[1]"),
    ({"id": "n", "type": "code", "config": {"code": "def main(x): return {}", "outputs": {"r": {"type": "string"}},
                                            "variables": [{"variable": "x", "value_selector": ["ghost", "x"]}]}},
     "config.variables[0].value_selector"),
    (template("n", "x", v=["ghost", "x"]), "config.variables[0].value_selector"),
    ({"id": "n", "type": "variable_aggregator", "config": {"variables": [["ghost", "x"]]}}, "config.variables[0]"),
    ({"id": "n", "type": "variable_aggregator",
      "config": {"groups": [{"group_name": "g", "variables": [["start", "q"], ["ghost", "x"]]}]}},
     "config.groups[0].variables[1]"),
    ({"id": "n", "type": "knowledge_retrieval",
      "config": {"query_variable_selector": ["ghost", "x"], "knowledge_base_ids": [KB]}},
     "config.query_variable_selector"),
    (end("n", out=["ghost", "x"]), "config.outputs[0].value_selector"),
]


@pytest.mark.parametrize(("node", "field"), REFERENCE_PLACES, ids=[f for _, f in REFERENCE_PLACES])
def test_references_everywhere_name_existing_nodes(node: dict[str, Any], field: str) -> None:
    q = {"variable": "q", "type": "string"}
    nodes = [start(q), node] if node["type"] == "end" else [start(q), node, end()]
    document = chain(*nodes)
    if node["type"] == "if_else":
        document["edges"][-1]["source_handle"] = "yes"
    found = problems(document)
    assert found == [("n", field, "unknown_node_reference")]


def test_references_name_upstream_nodes_only() -> None:
    document = {"nodes": [start(QUERY), template("a"), template("b", "x", v=["a", "output"]), template("c"),
                          end(out=["c", "output"], a=["a", "output"])],
                "edges": [edge("start", "a"), edge("start", "b"), edge("a", "c"), edge("b", "c"), edge("c", "end")]}
    found = validate_document(document)
    assert [(p.node_id, p.field, p.code) for p in found] == [
        ("b", "config.variables[0].value_selector", "not_upstream")]
    assert "does not run before" in found[0].message


def test_a_node_cannot_read_itself() -> None:
    assert problems(chain(start(), template("t", "x", v=["t", "output"]), end(out=["t", "output"]))) == [
        ("t", "config.variables[0].value_selector", "self_reference")]


def test_references_name_declared_outputs_and_follow_objects_and_arrays() -> None:
    kr = {"id": "kr", "type": "knowledge_retrieval",
          "config": {"query_variable_selector": ["start", "query"], "knowledge_base_ids": [KB]}}
    document = chain(start(QUERY), kr, llm("m", "{{#kr.result.0.content#}} {{#sys.user_id#}} {{#start.query#}}"),
                     end(tokens=["m", "usage", "total_tokens"], first=["kr", "result", "0"], text=["m", "text"]))
    assert problems(document) == []

    bad = chain(start(QUERY), llm("m", "{{#start.query.length#}}"),
                end(a=["m", "texts"], b=["m", "text", "upper"], c=["sys", "time", "year"]))
    assert problems(bad) == [
        ("m", "config.prompt_template[0].text", "invalid_path"),
        ("end", "config.outputs[0].value_selector", "unknown_output"),
        ("end", "config.outputs[1].value_selector", "invalid_path"),
        ("end", "config.outputs[2].value_selector", "invalid_path"),
    ]


def test_sys_fields_and_their_dify_aliases() -> None:
    document = chain(start(), llm("m", "{{#sys.run_id#}} {{#sys.workflow_run_id#}} {{#sys.app_id#}} {{#sys.time#}}"),
                     end(t=["m", "text"]))
    assert problems(document) == []
    wrong = chain(start(), llm("m", "{{#sys.query#}}"), end(t=["m", "text"]))
    found = validate_document(wrong)
    assert [(p.field, p.code) for p in found] == [("config.prompt_template[0].text", "unknown_sys_variable")]
    assert "run_id" in found[0].message


# -- types -------------------------------------------------------------------------------------
NUMBER = {"variable": "n", "type": "number"}
FLAGS = {"variable": "flags", "type": "array[string]"}


def test_knowledge_retrieval_queries_with_text() -> None:
    kr = {"id": "kr", "type": "knowledge_retrieval",
          "config": {"query_variable_selector": ["start", "n"], "knowledge_base_ids": [KB, "dify-encrypted=="]}}
    found = validate_document(chain(start(NUMBER), kr, end(r=["kr", "result"])))
    assert [(p.field, p.code) for p in found] == [("config.knowledge_base_ids[1]", "invalid_knowledge_base_id"),
                                                  ("config.query_variable_selector", "type_mismatch")]
    assert "start.n is of type number; here it must be string" in found[1].message


@pytest.mark.parametrize(("variable", "operator", "value", "code"), [
    (["start", "query"], ">", 3, "type_mismatch"),
    (["start", "n"], "start with", "a", "type_mismatch"),
    (["start", "n"], "contains", "a", "type_mismatch"),
    (["start", "query"], "all of", ["a"], "type_mismatch"),
    (["start", "n"], ">", "three", "invalid_condition_value"),
    (["start", "n"], "=", ["1"], "invalid_condition_value"),
    (["start", "flags"], "in", "a", "invalid_condition_value"),
])
def test_if_else_operators_fit_their_variable_and_value(variable: list[str], operator: str, value: Any,
                                                        code: str) -> None:
    document = chain(start(QUERY, NUMBER, FLAGS), if_else("if", condition(variable, operator, value)), end())
    document["edges"][-1]["source_handle"] = "yes"
    assert [p.code for p in validate_document(document)] == [code]


@pytest.mark.parametrize(("variable", "operator", "value"), [
    (["start", "n"], "≥", "1.5"), (["start", "n"], "<", 2), (["start", "n"], "=", "{{#start.n#}}"),
    (["start", "query"], "contains", "a"), (["start", "flags"], "contains", "a"), (["start", "flags"], "all of", ["a"]),
    (["start", "query"], "in", ["a", "b"]), (["start", "query"], "empty", None),
])
def test_if_else_operators_that_fit(variable: list[str], operator: str, value: Any) -> None:
    document = chain(start(QUERY, NUMBER, FLAGS), if_else("if", condition(variable, operator, value)), end())
    document["edges"][-1]["source_handle"] = "yes"
    assert problems(document) == []


def test_aggregated_variables_have_the_declared_output_type() -> None:
    aggregator = {"id": "agg", "type": "variable_aggregator",
                  "config": {"output_type": "string", "variables": [["start", "n"], ["start", "query"]],
                             "groups": [{"group_name": "nums", "output_type": "number",
                                         "variables": [["start", "n"], ["start", "query"]]}]}}
    found = problems(chain(start(QUERY, NUMBER), aggregator, end(x=["agg", "nums", "output"])))
    assert found == [("agg", "config.variables[0]", "type_mismatch"),
                     ("agg", "config.groups[0].variables[1]", "type_mismatch")]


def test_llm_context_is_text_or_retrieved_chunks() -> None:
    found = problems(chain(start(NUMBER), llm("m", context={"enabled": True, "variable_selector": ["start", "n"]}),
                           end(t=["m", "text"])))
    assert found == [("m", "config.context.variable_selector", "type_mismatch")]
    enabled_without = chain(start(), llm("m", context={"enabled": True}), end(t=["m", "text"]))
    assert problems(enabled_without) == [("m", "config.context.variable_selector", "missing_context_variable")]


# -- names and input declarations --------------------------------------------------------------
def test_names_are_unique_where_they_name_something() -> None:
    code = {"id": "c", "type": "code",
            "config": {"code": "def main(a): return {}",
                       "outputs": {"ok": {"type": "string"}, "9lives": {"type": "number"}},
                       "variables": [{"variable": "a", "value_selector": ["start", "query"]},
                                     {"variable": "a", "value_selector": ["start", "query"]}]}}
    document = chain(start(QUERY, QUERY), code, template("t", "x", a=["c", "ok"]), end(out=["t", "output"]))
    document["nodes"][-1]["config"]["outputs"].append({"variable": "out", "value_selector": ["c", "ok"]})
    found = problems(document)
    assert found == [("start", "config.variables[1].variable", "duplicate_variable"),
                     ("c", "config.variables[1].variable", "duplicate_variable"),
                     ("c", "config.outputs.9lives", "invalid_output_name"),
                     ("end", "config.outputs[1].variable", "duplicate_output")]


def test_run_outputs_may_be_named_like_difys() -> None:
    outputs = end(one=["start", "query"])
    outputs["config"]["outputs"] = [{"variable": name, "value_selector": ["start", "query"]} for name in ("1", "true")]
    assert problems(chain(start(QUERY), outputs)) == []


@pytest.mark.parametrize(("variable", "field"), [
    ({"variable": "a", "type": "number", "default": "3"}, "default"),
    ({"variable": "a", "type": "string", "options": ["x", "y"], "default": "z"}, "default"),
    ({"variable": "a", "type": "string", "max_length": 3, "default": "long"}, "default"),
    ({"variable": "a", "type": "boolean", "options": ["x"]}, "options"),
    ({"variable": "a", "type": "number", "options": [1, "two"]}, "options[1]"),
])
def test_input_declarations_are_consistent(variable: dict[str, Any], field: str) -> None:
    found = problems(chain(start(variable), end()))
    assert [(node, f) for node, f, _ in found] == [("start", f"config.variables[0].{field}")]


def test_field_paths_read_like_the_document() -> None:
    assert field_path(("config", "prompt_template", 0, "text")) == "config.prompt_template[0].text"
    assert field_path(("edges", 2, "source")) == "edges[2].source"
    assert Problem("n", "config.url", "invalid_config", "m").as_dict() == {
        "node_id": "n", "field": "config.url", "code": "invalid_config", "message": "m"}


# -- run inputs --------------------------------------------------------------------------------
INPUTS_DOCUMENT = WorkflowDocument.model_validate(chain(start(
    {"variable": "query", "type": "string", "required": True, "max_length": 5},
    {"variable": "count", "type": "number", "default": 2},
    {"variable": "mode", "type": "string", "options": ["fast", "slow"], "default": "fast"},
    {"variable": "tags", "type": "array[string]"},
    {"variable": "verbose", "type": "boolean", "required": True, "default": False},
    {"variable": "extra", "type": "object"},
), end()))


def test_input_schema_is_the_start_nodes_variables() -> None:
    assert [v.variable for v in input_schema(INPUTS_DOCUMENT)] == ["query", "count", "mode", "tags", "verbose", "extra"]
    assert input_schema(WorkflowDocument.model_validate(chain(template("t"), end()))) == []


def test_inputs_get_their_defaults_and_absent_optional_inputs_are_none() -> None:
    assert validate_inputs(INPUTS_DOCUMENT, {"query": "hi"}) == {
        "query": "hi", "count": 2, "mode": "fast", "tags": None, "verbose": False, "extra": None}
    given = {"query": "", "count": "7", "mode": "slow", "tags": ["a"], "verbose": True, "extra": {"k": [1]}}
    assert validate_inputs(INPUTS_DOCUMENT, given) == {**given, "count": 7}
    assert validate_inputs(INPUTS_DOCUMENT, {"query": "x", "count": "2.5"})["count"] == 2.5
    assert validate_inputs(INPUTS_DOCUMENT, {"query": "x", "count": 10**400})["count"] == 10**400
    with pytest.raises(WorkflowInputInvalid):
        validate_inputs(INPUTS_DOCUMENT, {"query": "x", "count": "9" * 400})  # past a float's range


def test_wrong_inputs_are_one_422_naming_every_field() -> None:
    with pytest.raises(WorkflowInputInvalid) as caught:
        validate_inputs(INPUTS_DOCUMENT, {"count": True, "mode": "medium", "tags": ["a", 1], "nope": 1,
                                          "extra": [], "verbose": "yes"})
    error = caught.value
    assert (error.status, error.code) == (422, "workflow_input_invalid")
    assert [(f["field"], f["type"]) for f in error.details["fields"]] == [
        ("inputs.nope", "unknown_input"), ("inputs.query", "missing"), ("inputs.count", "type_error"),
        ("inputs.mode", "not_an_option"), ("inputs.tags", "type_error"), ("inputs.verbose", "type_error"),
        ("inputs.extra", "type_error")]
    assert error.message.startswith("inputs.nope: the workflow takes no input 'nope'")
    with pytest.raises(WorkflowInputInvalid) as caught:
        validate_inputs(INPUTS_DOCUMENT, {"query": "too long"})
    assert caught.value.details["fields"] == [
        {"field": "inputs.query", "type": "too_long", "message": "must be at most 5 characters"}]
    with pytest.raises(WorkflowInputInvalid):
        validate_inputs(INPUTS_DOCUMENT, ["query"])  # type: ignore[arg-type]


# -- the JSON Schema ---------------------------------------------------------------------------
def test_the_committed_json_schema_is_the_generated_one() -> None:
    committed = (ROOT / "docs" / "workflow-document.schema.json").read_text()
    assert committed == render(), (
        "regenerate it: .venv/bin/python -m shared.workflows.schema docs/workflow-document.schema.json")


def test_the_json_schema_checks_each_nodes_config_by_its_type() -> None:
    schema = document_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    document = chain(start(QUERY), http("h", headers=[{"key": "A", "value": "{{#start.query#}}"}]),
                     end(out=["h", "body"]))
    assert list(validator.iter_errors(json.loads(json.dumps(document)))) == []
    broken = copy.deepcopy(document)
    broken["nodes"][1]["config"]["method"] = "FETCH"
    errors = list(validator.iter_errors(broken))
    assert errors and any("FETCH" in error.message for error in errors)


def test_a_selector_names_a_node_and_an_output() -> None:
    short = chain(start(QUERY), llm("m", context={"enabled": True, "variable_selector": ["start"]}),
                  end(t=["m", "text"]))
    assert problems(short) == [("m", "config.context.variable_selector", "invalid_selector")]
    aggregator = {"id": "agg", "type": "variable_aggregator", "config": {"variables": [["start"]]}}
    assert problems(chain(start(QUERY), aggregator, end(o=["agg", "output"]))) == [
        ("agg", "config.variables[0]", "invalid_config")]
