"""Configuration and whole-document validation of the question classifier, parameter
extractor, list operator and document extractor: their outputs and types, the classifier's
class-id handles, references in their templates, and the problems each locates."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.workflows.configs import ListOperatorConfig, outputs_of, parse_config
from shared.workflows.definition import Node
from shared.workflows.validation import validate_document

QUERY = {"variable": "query", "type": "string", "required": True}


def start(*variables: dict[str, Any]) -> dict[str, Any]:
    return {"id": "start", "type": "start", "config": {"variables": [QUERY, *variables]}}


def end(**outputs: list[str]) -> dict[str, Any]:
    return {"id": "end", "type": "end",
            "config": {"outputs": [{"variable": name, "value_selector": sel} for name, sel in outputs.items()]}}


def classifier(node_id: str = "qc", **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "question_classifier", "config": {
        "query_variable_selector": ["start", "query"],
        "classes": [{"id": "billing", "name": "Invoices and payments"}, {"id": "2", "name": "Anything else"}],
        **config}}


def extractor(node_id: str = "pe", *parameters: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "parameter_extractor", "config": {
        "query": ["start", "query"],
        "parameters": list(parameters) or [{"name": "city", "type": "string", "required": True}], **config}}


def list_operator(node_id: str = "lo", **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "list_operator", "config": {"variable": ["start", "items"], **config}}


def edge(source: str, target: str, handle: str = "source") -> dict[str, Any]:
    return {"source": source, "target": target, "source_handle": handle}


def problems(document: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    return [(p.node_id, p.field, p.code) for p in validate_document(document)]


def outputs(node_type: str, config: dict[str, Any]) -> dict[str, str]:
    return outputs_of(Node.model_validate({"id": "n", "type": node_type, "config": config}))


# -- outputs -----------------------------------------------------------------------------------
def test_each_node_type_declares_its_outputs_with_their_types() -> None:
    assert outputs("question_classifier", classifier()["config"]) == {
        "class_name": "string", "class_id": "string", "usage": "object"}
    assert outputs("parameter_extractor", extractor("pe", {"name": "n", "type": "number"},
                                                    {"name": "tags", "type": "array[string]"})["config"]) == {
        "n": "number", "tags": "array[string]", "__is_success": "number", "__reason": "string",
        "__usage": "object"}
    assert outputs("list_operator", list_operator(var_type="array[object]")["config"]) == {
        "result": "array[object]", "first_record": "object", "last_record": "object"}
    assert outputs("list_operator", list_operator()["config"])["first_record"] == "string"
    assert outputs("document_extractor", {"variable_selector": ["start", "f"]}) == {"text": "string"}
    assert outputs("document_extractor", {"variable_selector": ["start", "f"], "is_array_file": True}) == {
        "text": "array[string]"}


# -- configurations ----------------------------------------------------------------------------
@pytest.mark.parametrize(("node_type", "config", "message"), [
    ("question_classifier", {"query_variable_selector": ["start", "query"], "classes": []}, "at least 1"),
    ("question_classifier", {"query_variable_selector": ["start", "query"],
                             "classes": [{"id": "a", "name": "x"}, {"id": "a", "name": "y"}]}, "must not repeat"),
    ("question_classifier", {"query_variable_selector": ["start", "query"],
                             "classes": [{"id": "fail-branch", "name": "x"}]}, "reserved"),
    ("question_classifier", {"query_variable_selector": ["start", "query"],
                             "classes": [{"id": "a b", "name": "x"}]}, "pattern"),
    ("parameter_extractor", {"query": ["start", "query"], "parameters": [{"name": "__reason"}]}, "reserved"),
    ("parameter_extractor", {"query": ["start", "query"],
                             "parameters": [{"name": "n", "type": "number", "options": ["1"]}]}, "only string"),
    ("parameter_extractor", {"query": ["start", "query"], "parameters": [{"name": "f", "type": "object"}]},
     "literal"),
    ("parameter_extractor", {"query": ["start", "query"], "parameters": [{"name": "x"}],
                             "reasoning_mode": "guess"}, "function_call"),
    ("list_operator", {"variable": ["start", "items"], "var_type": "array[object]",
                       "order_by": {"enabled": True}}, "order_by its key"),
    ("list_operator", {"variable": ["start", "items"], "var_type": "array[object]",
                       "filter_by": {"enabled": True, "conditions": [{"comparison_operator": "empty"}]}},
     "its key"),
    ("list_operator", {"variable": ["start", "items"], "extract_by": {"enabled": True, "serial": "0"}}, "position"),
    ("list_operator", {"variable": ["start", "items"], "extract_by": {"serial": "first"}}, "position"),
    ("list_operator", {"variable": ["start", "items"], "limit": {"size": 0}}, "greater than or equal"),
    ("list_operator", {"variable": ["start", "items"], "var_type": "object"}, "literal"),
    ("document_extractor", {"variable_selector": ["start"]}, "at least 2"),
])
def test_configurations_that_do_not_fit_their_type_are_refused(node_type: str, config: dict[str, Any],
                                                               message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_config(node_type, config)
    assert message in str(caught.value).lower() or message in str(caught.value)


def test_list_positions_and_keys_that_are_accepted() -> None:
    for serial in ("1", "-1", "12", "{{#start.n#}}"):
        parsed = ListOperatorConfig.model_validate(
            {"variable": ["start", "items"], "extract_by": {"enabled": True, "serial": serial}})
        assert parsed.extract_by.serial == serial
    # A scalar list needs no key; a key is trimmed (a name), the value is kept as written.
    config = ListOperatorConfig.model_validate({"variable": ["start", "items"], "filter_by": {
        "enabled": True, "conditions": [{"key": " size ", "comparison_operator": "contains", "value": " a "}]}})
    assert (config.filter_by.conditions[0].key, config.filter_by.conditions[0].value) == ("size", " a ")


# -- the classifier's branches -----------------------------------------------------------------
def classifier_document(**node: Any) -> dict[str, Any]:
    return {"nodes": [start(), {**classifier(), **node},
                      {"id": "bill", "type": "template", "config": {"template": "b"}},
                      {"id": "other", "type": "template", "config": {"template": "o"}},
                      end(c=["qc", "class_name"], i=["qc", "class_id"], t=["qc", "usage", "total_tokens"])],
            "edges": [edge("start", "qc"), edge("qc", "bill", "billing"), edge("qc", "other", "2"),
                      edge("bill", "end"), edge("other", "end")]}


def test_a_classifiers_edges_leave_by_its_class_ids() -> None:
    assert problems(classifier_document()) == []


def test_a_classifier_has_no_source_exit_and_names_its_own() -> None:
    document = classifier_document()
    document["edges"][1] = edge("qc", "bill", "source")
    [problem] = validate_document(document)
    assert (problem.node_id, problem.field, problem.code) == (None, "edges[1].source_handle", "invalid_source_handle")
    assert "'billing', '2'" in problem.message


def test_a_classifier_fails_by_its_failure_branch_never_by_default_values() -> None:
    assert ("qc", "error_strategy", "unsupported_error_strategy") in problems(
        classifier_document(error_strategy="default_value", default_value={"class_name": "x"}))
    document = classifier_document(error_strategy="fail_branch")
    document["edges"].append(edge("qc", "end", "fail-branch"))
    assert problems(document) == []


def test_the_classifier_reads_a_string_and_its_instruction_references_resolve() -> None:
    document = classifier_document(config={**classifier()["config"], "query_variable_selector": ["start", "n"],
                                           "instruction": "Tone: {{#ghost.text#}}"})
    document["nodes"][0] = start({"variable": "n", "type": "number"})
    assert problems(document) == [("qc", "config.query_variable_selector", "type_mismatch"),
                                  ("qc", "config.instruction", "unknown_node_reference")]


# -- the extractor -----------------------------------------------------------------------------
def test_extracted_parameters_are_typed_outputs_downstream() -> None:
    document = {"nodes": [start(), extractor("pe", {"name": "days", "type": "number"}, {"name": "city"}),
                          {"id": "check", "type": "if_else", "config": {"cases": [{"case_id": "ok", "conditions": [
                              {"variable_selector": ["pe", "__is_success"], "comparison_operator": "=", "value": 1},
                              {"variable_selector": ["pe", "days"], "comparison_operator": ">", "value": 2},
                              {"variable_selector": ["pe", "city"], "comparison_operator": ">", "value": 2}]}]}},
                          end(r=["pe", "__reason"])],
                "edges": [edge("start", "pe"), edge("pe", "check"), edge("check", "end", "ok"),
                          edge("check", "end", "false")]}
    # A number compares; a string does not.
    assert problems(document) == [("check", "config.cases[0].conditions[2].variable_selector", "type_mismatch")]


def test_an_extractors_parameter_names_are_its_outputs_and_must_not_repeat() -> None:
    document = {"nodes": [start(), extractor("pe", {"name": "city"}, {"name": "city", "type": "number"},
                                             query=["start", "missing"], instruction="{{#start.query#}} ok"),
                          end(c=["pe", "country"])],
                "edges": [edge("start", "pe"), edge("pe", "end")]}
    assert problems(document) == [("pe", "config.parameters[1].name", "duplicate_output"),
                                  ("pe", "config.query", "unknown_output"),
                                  ("end", "config.outputs[0].value_selector", "unknown_output")]


# -- the list operator -------------------------------------------------------------------------
def list_document(items_type: str, **config: Any) -> dict[str, Any]:
    return {"nodes": [start({"variable": "items", "type": items_type}), list_operator(**config),
                      end(first=["lo", "first_record"], all=["lo", "result"])],
            "edges": [edge("start", "lo"), edge("lo", "end")]}


def test_the_list_must_be_of_the_declared_type() -> None:
    assert problems(list_document("array[number]", var_type="array[number]")) == []
    assert problems(list_document("array[string]", var_type="array[number]")) == [
        ("lo", "config.variable", "type_mismatch")]
    assert problems(list_document("string")) == [("lo", "config.variable", "type_mismatch")]


def test_filters_fit_the_items_and_their_values_fit_the_operator() -> None:
    def conditions(*items: dict[str, Any]) -> dict[str, Any]:
        return {"enabled": True, "conditions": list(items)}

    document = list_document("array[string]", filter_by=conditions(
        {"comparison_operator": ">", "value": "3"},
        {"comparison_operator": "in", "value": "a"},
        {"comparison_operator": "start with", "value": "{{#start.ghost#}}"},
        {"comparison_operator": "contains", "value": ["a"]}))
    assert problems(document) == [
        ("lo", "config.filter_by.conditions[0].comparison_operator", "type_mismatch"),
        ("lo", "config.filter_by.conditions[2].value", "unknown_output"),
        ("lo", "config.filter_by.conditions[1].value", "invalid_condition_value"),
        ("lo", "config.filter_by.conditions[3].value", "invalid_condition_value")]
    # Numbers: a numeric value (or its text, or a reference); objects: any operator on a field.
    assert problems(list_document("array[number]", var_type="array[number]", filter_by=conditions(
        {"comparison_operator": "≥", "value": "2.5"}, {"comparison_operator": "<", "value": "{{#start.query#}}"},
        {"comparison_operator": "=", "value": "two"}))) == [
        ("lo", "config.filter_by.conditions[2].value", "invalid_condition_value")]
    assert problems(list_document("array[object]", var_type="array[object]", filter_by=conditions(
        {"key": "name", "comparison_operator": "start with", "value": "A"},
        {"key": "score", "comparison_operator": ">", "value": 3}))) == []


def test_an_extract_position_may_reference_an_upstream_number() -> None:
    document = list_document("array[string]", extract_by={"enabled": True, "serial": "{{#ghost.n#}}"})
    assert problems(document) == [("lo", "config.extract_by.serial", "unknown_node_reference")]


# -- the document extractor --------------------------------------------------------------------
def extractor_document(file_type: str, is_array_file: bool, reader: list[str]) -> dict[str, Any]:
    return {"nodes": [start({"variable": "file", "type": file_type}),
                      {"id": "de", "type": "document_extractor",
                       "config": {"variable_selector": ["start", "file"], "is_array_file": is_array_file}},
                      {"id": "kr", "type": "knowledge_retrieval", "config": {
                          "query_variable_selector": reader,
                          "knowledge_base_ids": ["0190f7a4-8a8b-7c3d-9e0f-123456789abc"]}},
                      end(text=["de", "text"])],
            "edges": [edge("start", "de"), edge("de", "kr"), edge("kr", "end")]}


def test_the_document_extractor_reads_a_file_reference_or_a_list_of_them() -> None:
    assert problems(extractor_document("object", False, ["de", "text"])) == []
    assert problems(extractor_document("array[object]", True, ["de", "text", "0"])) == []
    # One text per file: a list is no query; a single file is no list.
    assert problems(extractor_document("array[object]", True, ["de", "text"])) == [
        ("kr", "config.query_variable_selector", "type_mismatch")]
    assert problems(extractor_document("array[object]", False, ["de", "text"])) == [
        ("de", "config.variable_selector", "type_mismatch")]
    assert problems(extractor_document("string", False, ["de", "text"])) == [
        ("de", "config.variable_selector", "type_mismatch")]
