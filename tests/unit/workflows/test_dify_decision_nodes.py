"""Dify DSL import and export of the question classifier, parameter extractor, list operator
and document extractor: a realistic Dify export of each imports field by field into a valid
document, what Stratus cannot run is refused, and a Stratus document using all four survives
export and import unchanged."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from shared.workflows.configs import parse_config
from shared.workflows.definition import WorkflowDocument
from shared.workflows.dify import EXTENSION_KEY, ModelSubstitution, export_dify, import_dify
from shared.workflows.errors import DslImportFailed, DslImportUnsupported
from shared.workflows.validation import validate_document


def load(content: str) -> Any:
    return import_dify(content, model_names={"gpt-4o"}, default_model="house-model")


# A review router as Dify 1.x exports it (canvas fields, notes and all).
CLASSIFIER_APP = """
app:
  description: Routes customer reviews
  icon: 🤖
  icon_background: '#FFEAD5'
  mode: workflow
  name: Review router
  use_icon_as_answer_icon: false
kind: app
version: 0.1.5
workflow:
  conversation_variables: []
  environment_variables: []
  features: {}
  graph:
    edges:
    - data: {isInIteration: false, sourceType: start, targetType: question-classifier}
      id: 1711529033302-source-1711529036587-target
      source: '1711529033302'
      sourceHandle: source
      target: '1711529036587'
      targetHandle: target
      type: custom
      zIndex: 0
    - data: {isInIteration: false, sourceType: question-classifier, targetType: template-transform}
      id: 1711529036587-1711529038361-1711529059204-target
      source: '1711529036587'
      sourceHandle: '1711529038361'
      target: '1711529059204'
      targetHandle: target
      type: custom
      zIndex: 0
    - data: {isInIteration: false, sourceType: question-classifier, targetType: template-transform}
      id: 1711529036587-1711529041725-1711529066687-target
      source: '1711529036587'
      sourceHandle: '1711529041725'
      target: '1711529066687'
      targetHandle: target
      type: custom
      zIndex: 0
    - data: {isInIteration: false, sourceType: template-transform, targetType: variable-aggregator}
      id: 1711529059204-source-1718995432944-target
      source: '1711529059204'
      sourceHandle: source
      target: '1718995432944'
      targetHandle: target
      type: custom
    - data: {isInIteration: false, sourceType: template-transform, targetType: variable-aggregator}
      id: 1711529066687-source-1718995432944-target
      source: '1711529066687'
      sourceHandle: source
      target: '1718995432944'
      targetHandle: target
      type: custom
    - data: {isInIteration: false, sourceType: variable-aggregator, targetType: end}
      id: 1718995432944-source-1718995448481-target
      source: '1718995432944'
      sourceHandle: source
      target: '1718995448481'
      targetHandle: target
      type: custom
    nodes:
    - data:
        desc: ''
        selected: false
        title: Start
        type: start
        variables:
        - label: Customer Review
          max_length: 480
          options: []
          required: true
          type: paragraph
          variable: review
      height: 90
      id: '1711529033302'
      position: {x: 80, y: 282}
      positionAbsolute: {x: 80, y: 282}
      type: custom
      width: 244
    - data:
        classes:
        - id: '1711529038361'
          name: Positive review
        - id: '1711529041725'
          name: Negative review
        desc: Decides the tone of the review
        instructions: ''
        instruction: 'Sarcasm counts as negative. Product: {{#1711529033302.review#}}'
        model:
          completion_params: {frequency_penalty: 0, max_tokens: 512, presence_penalty: 0, temperature: 0.7, top_p: 1}
          mode: chat
          name: gpt-3.5-turbo
          provider: langgenius/openai/openai
        query_variable_selector: ['1711529033302', review]
        selected: false
        title: Question Classifier
        topics: []
        type: question-classifier
        vision: {enabled: false}
      height: 216
      id: '1711529036587'
      position: {x: 364, y: 282}
      type: custom
    - data: {desc: '', template: 'Thanks!', title: Praise, type: template-transform, variables: []}
      id: '1711529059204'
      position: {x: 648, y: 282}
      type: custom
    - data: {desc: '', template: 'Sorry.', title: Apology, type: template-transform, variables: []}
      id: '1711529066687'
      position: {x: 648, y: 422}
      type: custom
    - data:
        desc: ''
        output_type: string
        title: Variable Aggregator
        type: variable-aggregator
        variables:
        - ['1711529059204', output]
        - ['1711529066687', output]
      id: '1718995432944'
      position: {x: 932, y: 282}
      type: custom
    - data:
        desc: ''
        outputs:
        - value_selector: ['1711529036587', class_name]
          variable: tone
        - value_selector: ['1718995432944', output]
          variable: reply
        title: End
        type: end
      id: '1718995448481'
      position: {x: 1216, y: 282}
      type: custom
"""


def test_a_dify_question_classifier_imports_with_its_classes_as_branches() -> None:
    result = load(CLASSIFIER_APP)
    document = result.document
    assert validate_document(document) == []
    node = document.node("1711529036587")
    assert (node.type, node.title, node.description) == ("question_classifier", "Question Classifier",
                                                        "Decides the tone of the review")
    assert node.config == {
        "query_variable_selector": ["1711529033302", "review"],
        "model": {"name": "house-model", "temperature": 0.7, "top_p": 1.0, "max_tokens": 512, "stop": []},
        "classes": [{"id": "1711529038361", "name": "Positive review"},
                    {"id": "1711529041725", "name": "Negative review"}],
        "instruction": "Sarcasm counts as negative. Product: {{#1711529033302.review#}}"}
    handles = {(e.target, e.source_handle) for e in document.edges if e.source == "1711529036587"}
    assert handles == {("1711529059204", "1711529038361"), ("1711529066687", "1711529041725")}
    assert result.substitutions == [ModelSubstitution("1711529036587", "langgenius/openai/openai/gpt-3.5-turbo",
                                                      "house-model")]
    assert result.warnings == ["node 1711529036587: completion parameters frequency_penalty, presence_penalty "
                               "have no Stratus equivalent and were dropped"]


def test_the_classifiers_instruction_of_older_dify_editors_is_read() -> None:
    content = CLASSIFIER_APP.replace("instructions: ''", "instructions: Be kind").replace(
        "instruction: 'Sarcasm counts as negative. Product: {{#1711529033302.review#}}'", "instruction: ''")
    assert load(content).document.node("1711529036587").config["instruction"] == "Be kind"


def graph_app(*nodes: dict[str, Any], edges: list[tuple[str, str, str]]) -> str:
    return yaml.safe_dump({
        "app": {"name": "sample", "mode": "workflow"}, "kind": "app", "version": "0.3.1",
        "workflow": {"graph": {
            "nodes": [{"id": node["id"], "type": "custom", "position": {"x": 100 * i, "y": 0}, "data": node["data"]}
                      for i, node in enumerate(nodes)],
            "edges": [{"id": f"{s}-{h}-{t}-target", "source": s, "sourceHandle": h, "target": t}
                      for s, h, t in edges]}}}, allow_unicode=True)


START = {"id": "start", "data": {"type": "start", "title": "Start", "variables": [
    {"variable": "query", "label": "Query", "type": "paragraph", "required": True, "max_length": 4000}]}}


def test_a_dify_parameter_extractor_imports_with_its_typed_parameters() -> None:
    extractor = {"id": "1720000000001", "data": {
        "type": "parameter-extractor", "title": "Extract trip", "desc": "",
        "model": {"provider": "openai", "name": "gpt-4o", "mode": "chat", "completion_params": {"temperature": 0}},
        "query": ["start", "query"], "reasoning_mode": "prompt",
        "instruction": "Dates are ISO 8601.",
        "parameters": [
            {"name": "city", "type": "string", "description": "Destination city", "required": True},
            {"name": "nights", "type": "number", "description": "How many nights", "required": False},
            {"name": "class", "type": "select", "options": ["economy", "business"], "description": "Cabin",
             "required": False},
            {"name": "pets", "type": "bool", "description": "Travelling with pets", "required": False},
            {"name": "stops", "type": "array[string]", "description": "Cities on the way", "required": False}],
        "memory": {"window": {"enabled": False, "size": 50}}, "vision": {"enabled": False}}}
    end = {"id": "end", "data": {"type": "end", "title": "End", "outputs": [
        {"variable": "city", "value_selector": ["1720000000001", "city"]},
        {"variable": "ok", "value_selector": ["1720000000001", "__is_success"]}]}}
    result = load(graph_app(START, extractor, end, edges=[("start", "source", "1720000000001"),
                                                         ("1720000000001", "source", "end")]))
    assert validate_document(result.document) == []
    assert result.warnings == [] and result.substitutions == []
    assert result.document.node("1720000000001").config == {
        "query": ["start", "query"],
        "model": {"name": "gpt-4o", "temperature": 0.0, "top_p": None, "max_tokens": None, "stop": []},
        "parameters": [
            {"name": "city", "type": "string", "description": "Destination city", "required": True, "options": []},
            {"name": "nights", "type": "number", "description": "How many nights", "required": False, "options": []},
            {"name": "class", "type": "string", "description": "Cabin", "required": False,
             "options": ["economy", "business"]},
            {"name": "pets", "type": "boolean", "description": "Travelling with pets", "required": False,
             "options": []},
            {"name": "stops", "type": "array[string]", "description": "Cities on the way", "required": False,
             "options": []}],
        "instruction": "Dates are ISO 8601.", "reasoning_mode": "prompt"}


def test_a_dify_list_operator_imports_its_filter_extract_order_and_limit() -> None:
    code = {"id": "code", "data": {"type": "code", "title": "Scores", "code_language": "python3",
                                   "code": "def main():\n    return {'scores': [3, 1, 2]}\n", "variables": [],
                                   "outputs": {"scores": {"type": "array[number]", "children": None}}}}
    operator = {"id": "1730000000001", "data": {
        "type": "list-operator", "title": "Top scores", "desc": "",
        "variable": ["code", "scores"], "var_type": "array[number]", "item_var_type": "number",
        "filter_by": {"enabled": True, "conditions": [{"key": "", "comparison_operator": "≥", "value": "2"}]},
        "extract_by": {"enabled": False, "serial": "1"},
        "order_by": {"enabled": True, "key": "", "value": "desc"},
        "limit": {"enabled": True, "size": 2}}}
    end = {"id": "end", "data": {"type": "end", "title": "End", "outputs": [
        {"variable": "top", "value_selector": ["1730000000001", "first_record"]}]}}
    result = load(graph_app(START, code, operator, end, edges=[
        ("start", "source", "code"), ("code", "source", "1730000000001"), ("1730000000001", "source", "end")]))
    assert validate_document(result.document) == [] and result.warnings == []
    assert result.document.node("1730000000001").config == {
        "variable": ["code", "scores"], "var_type": "array[number]",
        "filter_by": {"enabled": True, "conditions": [{"key": "", "comparison_operator": "≥", "value": "2"}]},
        "order_by": {"enabled": True, "key": "", "value": "desc"},
        "limit": {"enabled": True, "size": 2},
        "extract_by": {"enabled": False, "serial": "1"}}


def test_dify_list_operator_defaults_and_string_in_filters() -> None:
    operator = {"id": "lo", "data": {
        "type": "list-operator", "title": "Filter", "variable": ["start", "query"],
        "filter_by": {"enabled": True, "conditions": [{"key": "", "comparison_operator": "in", "value": "a"}]},
        "order_by": {"enabled": False, "key": "", "value": "asc"}, "limit": {"enabled": False, "size": -1}}}
    result = load(graph_app(START, operator, edges=[("start", "source", "lo")]))
    config = result.document.node("lo").config
    assert config["limit"] == {"enabled": False, "size": 10}
    assert config["filter_by"]["conditions"] == [{"key": "", "comparison_operator": "in", "value": ["a"]}]
    assert config["var_type"] == "array[string]"
    assert result.warnings == [
        "node lo: the list's type (var_type) is not given; array[string] is assumed (validation checks it against "
        "the variable)",
        "node lo: filter 'in' 'a' compares whole items with a list of values: it became ['a']"]
    # The variable is a string, not the list the node was assumed to take: validation says so.
    assert ("lo", "config.variable", "type_mismatch") in {
        (p.node_id, p.field, p.code) for p in validate_document(result.document)}


def test_a_dify_document_extractor_on_a_file_input_imports() -> None:
    start = {"id": "start", "data": {"type": "start", "title": "Start", "variables": [
        {"variable": "contract", "label": "Contract", "type": "file", "required": True,
         "allowed_file_types": ["document"], "allowed_file_extensions": [],
         "allowed_file_upload_methods": ["local_file", "remote_url"]},
        {"variable": "annexes", "label": "Annexes", "type": "file-list", "required": False, "max_length": 5,
         "allowed_file_types": ["document"], "allowed_file_upload_methods": ["local_file"]}]}}
    one = {"id": "1740000000001", "data": {"type": "document-extractor", "title": "Contract text", "desc": "",
                                          "variable_selector": ["start", "contract"], "is_array_file": False}}
    many = {"id": "1740000000002", "data": {"type": "document-extractor", "title": "Annex texts",
                                           "variable_selector": ["start", "annexes"], "is_array_file": True,
                                           "output_image": True}}
    end = {"id": "end", "data": {"type": "end", "title": "End", "outputs": [
        {"variable": "text", "value_selector": ["1740000000001", "text"]},
        {"variable": "annexes", "value_selector": ["1740000000002", "text"]}]}}
    result = load(graph_app(start, one, many, end, edges=[
        ("start", "source", "1740000000001"), ("start", "source", "1740000000002"),
        ("1740000000001", "source", "end"), ("1740000000002", "source", "end")]))
    document = result.document
    assert validate_document(document) == []
    assert document.node("1740000000001").config == {"variable_selector": ["start", "contract"],
                                                    "is_array_file": False}
    assert document.node("1740000000002").config == {"variable_selector": ["start", "annexes"],
                                                    "is_array_file": True}
    inputs = document.node("start").config["variables"]
    assert [(v["variable"], v["type"], v["required"], v["max_length"]) for v in inputs] == [
        ("contract", "object", True, None), ("annexes", "array[object]", False, None)]
    assert result.warnings == [
        "node start: the file input 'contract' takes a file reference {url | s3_key | content_base64, filename, "
        "mime_type} (its allowed types, upload methods and limits were dropped)",
        "node start: the file-list input 'annexes' takes a list of file references {url | s3_key | content_base64, "
        "filename, mime_type} (its allowed types, upload methods and limits were dropped)",
        "node 1740000000002: output_image was dropped: the extractor answers the documents' text only"]


def test_what_these_nodes_cannot_run_is_refused_naming_each() -> None:
    operator = {"id": "files", "data": {"type": "list-operator", "variable": ["sys", "files"],
                                        "var_type": "array[file]", "item_var_type": "file",
                                        "filter_by": {"enabled": True, "conditions": [
                                            {"key": "type", "comparison_operator": "in", "value": ["image"]}]}}}
    extractor = {"id": "pe", "data": {"type": "parameter-extractor", "query": ["start", "query"],
                                      "model": {"provider": "openai", "name": "gpt-4o"},
                                      "parameters": [{"name": "doc", "type": "file", "description": "",
                                                      "required": True}]}}
    with pytest.raises(DslImportUnsupported) as caught:
        load(graph_app(START, operator, extractor, edges=[("start", "source", "files"), ("files", "source", "pe")]))
    assert [(p["node_id"], p["field"]) for p in caught.value.details["problems"]] == [
        ("files", "data.var_type"), ("pe", "data.parameters[0].type")]
    assert "list operations on files (node files)" in caught.value.message
    assert "parameters of type file (node pe)" in caught.value.message


def test_junk_shapes_in_these_nodes_import_and_validation_locates_them() -> None:
    classifier = {"id": "qc", "data": {"type": "question-classifier", "classes": [{"id": 7, "name": ""}, "x"],
                                       "query_variable_selector": "oops", "model": None}}
    operator = {"id": "lo", "data": {"type": "list-operator", "variable": ["start", "query"], "var_type": None,
                                     "filter_by": [], "limit": {"enabled": True, "size": "none"},
                                     "extract_by": {"enabled": True, "serial": 0}}}
    with pytest.raises(DslImportFailed) as caught:
        load(graph_app(START, classifier, operator, edges=[("start", "source", "qc"), ("qc", "7", "lo")]))
    # One malformed class (not a mapping) is the file's problem, located.
    assert [(p["node_id"], p["field"]) for p in caught.value.details["problems"]] == [("qc", "data.classes[1]")]
    classifier["data"]["classes"] = [{"id": 7, "name": ""}]
    result = load(graph_app(START, classifier, operator, edges=[("start", "source", "qc"), ("qc", "7", "lo")]))
    found = {(p.node_id, p.field, p.code) for p in validate_document(result.document)}
    assert ("qc", "config.classes[0].name", "invalid_config") in found
    assert ("qc", "config.query_variable_selector", "invalid_config") in found
    assert ("lo", "config.extract_by", "invalid_config") in found
    assert "node lo: limit size 'none' keeps nothing; 1 is used" in result.warnings


# -- export ------------------------------------------------------------------------------------
def everything() -> WorkflowDocument:
    return WorkflowDocument.model_validate({"nodes": [
        {"id": "start", "type": "start", "position": {"x": 0, "y": 0}, "config": {"variables": [
            {"variable": "q", "required": True}, {"variable": "contract", "type": "object"},
            {"variable": "items", "type": "array[object]"}]}},
        {"id": "qc", "type": "question_classifier", "position": {"x": 300, "y": 0}, "timeout_s": 60,
         "error_strategy": "fail_branch",
         "config": {"query_variable_selector": ["start", "q"], "model": {"name": "gpt-4o", "temperature": 0.1},
                    "classes": [{"id": "1", "name": "A trip"}, {"id": "other", "name": "Anything else"}],
                    "instruction": "Trips include hotels. {{#start.q#}}"}},
        {"id": "pe", "type": "parameter_extractor", "position": {"x": 600, "y": 0},
         "retry": {"max_attempts": 2, "interval_ms": 100},
         "config": {"query": ["start", "q"], "reasoning_mode": "prompt", "instruction": "Be literal.",
                    "parameters": [{"name": "city", "required": True, "description": "The city"},
                                   {"name": "cabin", "options": ["economy", "business"]},
                                   {"name": "nights", "type": "number"}, {"name": "pets", "type": "boolean"},
                                   {"name": "flags", "type": "array[boolean]"}]}},
        {"id": "lo", "type": "list_operator", "position": {"x": 600, "y": 200},
         "config": {"variable": ["start", "items"], "var_type": "array[object]",
                    "filter_by": {"enabled": True, "conditions": [
                        {"key": "score", "comparison_operator": ">", "value": 3},
                        {"key": "tag", "comparison_operator": "in", "value": ["a", "b"]},
                        {"key": "name", "comparison_operator": "not empty"}]},
                    "order_by": {"enabled": True, "key": "score", "value": "desc"},
                    "limit": {"enabled": True, "size": 5}, "extract_by": {"enabled": False, "serial": "-1"}}},
        {"id": "de", "type": "document_extractor", "position": {"x": 900, "y": 200},
         "config": {"variable_selector": ["start", "contract"]}},
        {"id": "end", "type": "end", "position": {"x": 1200, "y": 0}, "config": {"outputs": [
            {"variable": "city", "value_selector": ["pe", "city"]},
            {"variable": "best", "value_selector": ["lo", "first_record"]},
            {"variable": "text", "value_selector": ["de", "text"]}]}},
    ], "edges": [
        {"source": "start", "target": "qc"}, {"source": "qc", "target": "pe", "source_handle": "1"},
        {"source": "qc", "target": "lo", "source_handle": "other"},
        {"source": "qc", "target": "end", "source_handle": "fail-branch"},
        {"source": "pe", "target": "end"}, {"source": "lo", "target": "de"}, {"source": "de", "target": "end"}]})


def test_a_document_with_these_nodes_survives_export_and_import_unchanged() -> None:
    document = everything()
    assert validate_document(document) == []
    exported = export_dify(document, name="Trips")
    result = import_dify(exported, model_names={"gpt-4o"}, default_model=None)
    assert result.warnings == [] and result.substitutions == []
    canonical = document.model_copy(deep=True)
    for item in canonical.nodes:
        item.config = parse_config(item.type, item.config).model_dump(mode="json", by_alias=True)
    assert result.document == canonical
    nodes = {n["id"]: n["data"] for n in yaml.safe_load(exported)["workflow"]["graph"]["nodes"]}
    # Only what Dify has no field (or no type) for travels in the extension.
    assert nodes["qc"][EXTENSION_KEY] == {"/timeout_s": 60}
    assert nodes["lo"][EXTENSION_KEY] == {"/config/filter_by/conditions/0/value": 3}
    assert {name for name, data in nodes.items() if EXTENSION_KEY in data} == {"start", "qc", "lo"}


def test_the_export_writes_these_nodes_as_difys_importer_reads_them() -> None:
    data = yaml.safe_load(export_dify(everything(), name="Trips"))
    nodes = {n["id"]: n["data"] for n in data["workflow"]["graph"]["nodes"]}
    assert {nodes[n]["type"] for n in ("qc", "pe", "lo", "de")} == {
        "question-classifier", "parameter-extractor", "list-operator", "document-extractor"}
    assert nodes["qc"]["classes"] == [{"id": "1", "name": "A trip"}, {"id": "other", "name": "Anything else"}]
    assert nodes["qc"]["model"] == {"provider": "stratus", "name": "gpt-4o", "mode": "chat",
                                    "completion_params": {"temperature": 0.1}}
    assert (nodes["qc"]["query_variable_selector"], nodes["qc"]["instruction"], nodes["qc"]["error_strategy"]) == (
        ["start", "q"], "Trips include hotels. {{#start.q#}}", "fail-branch")
    assert [(p["name"], p["type"], p["options"], p["required"]) for p in nodes["pe"]["parameters"]] == [
        ("city", "string", [], True), ("cabin", "select", ["economy", "business"], False),
        ("nights", "number", [], False), ("pets", "bool", [], False), ("flags", "array[boolean]", [], False)]
    assert (nodes["pe"]["query"], nodes["pe"]["reasoning_mode"]) == (["start", "q"], "prompt")
    assert nodes["pe"]["retry_config"] == {"retry_enabled": True, "max_retries": 1, "retry_interval": 100}
    assert (nodes["lo"]["var_type"], nodes["lo"]["item_var_type"]) == ("array[object]", "object")
    # Dify's condition values are text.
    assert nodes["lo"]["filter_by"]["conditions"][0] == {"key": "score", "comparison_operator": ">", "value": "3"}
    assert nodes["lo"]["extract_by"] == {"enabled": False, "serial": "-1"}
    assert nodes["de"]["variable_selector"] == ["start", "contract"] and nodes["de"]["is_array_file"] is False
    edges = {e["id"] for e in data["workflow"]["graph"]["edges"]}
    assert {"qc-1-pe-target", "qc-other-lo-target", "qc-fail-branch-end-target"} <= edges


# -- robustness --------------------------------------------------------------------------------
def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path, *(leaf for key, item in value.items() for leaf in _paths(item, (*path, key)))]
    if isinstance(value, list):
        return [path, *(leaf for index, item in enumerate(value) for leaf in _paths(item, (*path, index)))]
    return [path]


def _with(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    copied = copy.deepcopy(value)
    target = copied
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return copied


def test_any_field_of_these_nodes_of_any_wrong_shape_is_a_422_or_a_document_never_a_crash() -> None:
    data = yaml.safe_load(export_dify(everything(), name="Trips"))
    nodes = data["workflow"]["graph"]["nodes"]
    paths = [("workflow", "graph", "nodes", index, "data", *leaf) for index, item in enumerate(nodes)
             if item["id"] in ("qc", "pe", "lo", "de") for leaf in _paths(item["data"]) if leaf]
    assert len(paths) > 60
    outcomes = {"imported": 0, "refused": 0}
    for count, (path, weird) in enumerate((p, w) for p in paths for w in ([1, [2]], {"x": None}, None)):
        try:
            result = import_dify(yaml.dump(_with(data, path, weird), Dumper=yaml.CSafeDumper, allow_unicode=True),
                                 model_names={"gpt-4o"}, default_model=None)
        except (DslImportFailed, DslImportUnsupported) as exc:
            assert exc.status == 422 and exc.message
            outcomes["refused"] += 1
            continue
        outcomes["imported"] += 1
        validate_document(result.document)
        if count % 5 == 0:
            import_dify(export_dify(result.document, name="x"), model_names={"gpt-4o"}, default_model=None)
    assert outcomes["imported"] and outcomes["refused"]
