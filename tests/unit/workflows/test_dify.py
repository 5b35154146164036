"""Dify DSL import and export: every fixture of Dify's own corpus that uses only the node types
Stratus runs imports into a valid document and survives export → import unchanged; the others
are refused naming each node Stratus does not run; each node type's configuration is mapped
field by field; what is dropped is listed; malformed files get a clear 422."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.workflows.configs import parse_config
from shared.workflows.definition import WorkflowDocument
from shared.workflows.dify import (
    DIFY_TYPES,
    EXTENSION_KEY,
    MAX_DSL_CHARS,
    ModelSubstitution,
    export_dify,
    import_dify,
)
from shared.workflows.errors import DslImportFailed, DslImportUnsupported
from shared.workflows.validation import validate_document

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dify"
KB = "0190f7a4-8a8b-7c3d-9e0f-123456789abc"

SUPPORTED = [
    "simple_passthrough_workflow.yml",
    "conditional_hello_branching_workflow.yml",
    "basic_llm_chat_workflow.yml",
    "conditional_streaming_vs_template_workflow.yml",
    "dual_switch_variable_aggregator_workflow.yml",
    "end_node_without_value_type_field_workflow.yml",
    "conditional_parallel_code_execution_workflow.yml",
    "builder_restricted/http_text.yml",
    "builder_restricted/http_default_output.yml",
    "builder_restricted/scalar.yml",
    "builder_restricted/template_greeting.yml",
    "builder_restricted/code_increment.yml",
    "array_iteration_formatting_workflow.yml",
    "parallel_iteration_formatting_workflow.yml",
    "iteration_flatten_output_enabled_workflow.yml",
    "iteration_flatten_output_disabled_workflow.yml",
    "increment_loop_with_break_condition_workflow.yml",
]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def raw(name: str) -> dict[str, Any]:
    return yaml.safe_load(fixture(name))


def graph_of(data: dict[str, Any]) -> dict[str, Any]:
    return data["workflow"]["graph"] if "workflow" in data else data


def load(content: str, models: Any = frozenset({"gpt-4o", "house-model"}), default: str | None = "house-model",
         ) -> Any:
    return import_dify(content, model_names=models, default_model=default)


def app(*nodes: dict[str, Any], edges: list[tuple[str, str, str]] | None = None, mode: str = "workflow",
        version: str = "0.3.1") -> str:
    """A Dify app export of these nodes (``{"id", "data"}``), linked in a line unless ``edges``."""
    ids = [node["id"] for node in nodes]
    links = edges if edges is not None else [(a, "source", b) for a, b in itertools.pairwise(ids)]
    return yaml.safe_dump({
        "app": {"name": "sample", "description": "made in a test", "mode": mode},
        "kind": "app", "version": version,
        "workflow": {"graph": {
            "nodes": [{"id": node["id"], "type": "custom", "position": {"x": 10, "y": 20},
                       "data": {"title": node["id"], **node["data"]}} for node in nodes],
            "edges": [{"id": f"{s}-{h}-{t}-target", "source": s, "sourceHandle": h, "target": t} for s, h, t in links],
        }},
    }, allow_unicode=True)


START = {"id": "start", "data": {"type": "start", "variables": [
    {"variable": "query", "label": "Query", "type": "text-input", "required": True}]}}


def end(**outputs: list[str]) -> dict[str, Any]:
    return {"id": "end", "data": {"type": "end", "outputs": [
        {"variable": name, "value_selector": selector} for name, selector in outputs.items()]}}


def node(document: WorkflowDocument, node_id: str) -> Any:
    return document.node(node_id)


# -- Dify's corpus -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", SUPPORTED)
def test_every_fixture_of_supported_node_types_imports_into_a_valid_document(name: str) -> None:
    result = load(fixture(name))
    assert validate_document(result.document) == []
    graph = graph_of(raw(name))
    assert [n.id for n in result.document.nodes] == [str(n["id"]) for n in graph["nodes"]]
    assert [n.type for n in result.document.nodes] == [DIFY_TYPES[n["data"]["type"]] for n in graph["nodes"]]
    assert [(e.source, e.target, e.source_handle) for e in result.document.edges] == [
        (e["source"], e["target"], e.get("sourceHandle", "source")) for e in graph["edges"]]
    for dify_node, imported in zip(graph["nodes"], result.document.nodes, strict=True):
        if "position" in dify_node:
            assert (imported.position.x, imported.position.y) == (dify_node["position"]["x"],
                                                                  dify_node["position"]["y"])
        else:
            assert imported.position is not None  # laid out for the canvas
    if "app" in raw(name):
        assert (result.name, result.description) == (raw(name)["app"]["name"], raw(name)["app"]["description"])
    else:
        assert (result.name, result.description) == ("", "")


@pytest.mark.parametrize("name", SUPPORTED)
def test_every_imported_fixture_survives_export_and_import_unchanged(name: str) -> None:
    first = load(fixture(name))
    exported = export_dify(first.document, name=first.name or "bare", description=first.description)
    again = load(exported)
    assert again.document == first.document
    assert again.warnings == [] and again.substitutions == []
    assert (again.name, again.description) == (first.name or "bare", first.description)
    # Nothing Dify lacks a field for was needed: the export is plain Dify.
    assert not [n for n in graph_of(yaml.safe_load(exported))["nodes"] if EXTENSION_KEY in n["data"]]


def _unsupported(name: str) -> list[tuple[str, str]]:
    # A tool imports as a workflow of the tenant (a sub-workflow), a tool of the tenant's provider of
    # the same name, or a Stratus built-in of that name; with no tenant tools, only the built-ins.
    return [(str(n["id"]), n["data"]["type"]) for n in graph_of(raw(name))["nodes"]
            if n["data"]["type"] not in DIFY_TYPES
            or (n["data"]["type"] == "tool" and n["data"].get("provider_type") != "workflow"
                and n["data"].get("tool_name") != "current_time")]


UNSUPPORTED_WORKFLOWS = sorted(
    str(path.relative_to(FIXTURES)) for path in FIXTURES.rglob("*.yml")
    if (data := yaml.safe_load(path.read_text())).get("app", {}).get("mode") == "workflow"
    and str(path.relative_to(FIXTURES)) not in SUPPORTED)


def test_the_corpus_is_split_as_expected() -> None:
    assert UNSUPPORTED_WORKFLOWS == ["http_request_with_json_tool_workflow.yml", "knowledge_retrieval_v2_workflow.yml"]


@pytest.mark.parametrize("name", UNSUPPORTED_WORKFLOWS)
def test_fixtures_with_node_types_stratus_does_not_run_are_one_422_naming_each(name: str) -> None:
    with pytest.raises(DslImportUnsupported) as caught:
        load(fixture(name))
    error = caught.value
    assert (error.status, error.code) == (422, "workflow_import_unsupported")
    expected = _unsupported(name)
    assert expected
    assert [(p["node_id"], p["field"], p["code"]) for p in error.details["problems"]] == [
        (node_id, "data.provider_id" if dify_type == "tool" else "data.type", "unsupported_node_type")
        for node_id, dify_type in expected]
    for node_id, dify_type in expected:
        assert node_id in error.message
        assert ("no tool provider of this tenant has that name" if dify_type == "tool" else f"{dify_type} nodes") \
            in error.message
    assert "Nothing was imported" in error.message


def test_the_unsupported_message_groups_nodes_by_type() -> None:
    tool = {"type": "tool", "provider_type": "builtin", "provider_name": "acme", "tool_name": "search"}
    with pytest.raises(DslImportUnsupported) as caught:
        load(app(START, {"id": "t1", "data": tool}, {"id": "a1", "data": {"type": "agent"}},
                 {"id": "t2", "data": tool}))
    message = caught.value.message
    assert message.startswith("Stratus does not run these yet: tool 'search' of 'acme' nodes (no tool provider of "
                              "this tenant has that name and that tool")
    assert "(nodes t1, t2); Dify agent nodes (their strategy, model and tools are defined in the node" in message
    assert message.endswith("(node a1). Nothing was imported: remove or replace them in Dify and export again")
    assert caught.value.details["problems"][0]["message"].startswith("Stratus does not run tool 'search' of 'acme'")


CHATFLOWS = sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.rglob("*.yml")
                   if yaml.safe_load(path.read_text()).get("app", {}).get("mode") == "advanced-chat")


# A chatflow with a marketplace tool: refused naming the tool node while the tenant has no tool
# provider of its name (tests/integration/test_workflow_compat_engine.py creates one). Dify's
# time/current_time is Stratus's built-in current_time.
CHATFLOWS_WITH_TOOLS = ("search_dify_from_2023_to_2025.yml",)


@pytest.mark.parametrize("name", CHATFLOWS)
def test_chatflows_import_as_chatflows_that_round_trip(name: str) -> None:
    if name in CHATFLOWS_WITH_TOOLS:
        with pytest.raises(DslImportUnsupported) as caught:
            load(fixture(name))
        assert caught.value.code == "workflow_import_unsupported" and "'perplexity'" in caught.value.message
        return
    document = load(fixture(name)).document
    assert document.mode == "chatflow" and any(n.type == "answer" for n in document.nodes)
    assert load(export_dify(document, name=name)).document == document


def test_every_corpus_file_is_accounted_for() -> None:
    everything = sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.rglob("*.yml"))
    assert len(everything) == 34
    assert sorted([*SUPPORTED, *UNSUPPORTED_WORKFLOWS, *CHATFLOWS, "minimal_not_an_app.yml"]) == everything


def test_a_file_that_is_not_an_app_export_is_invalid() -> None:
    with pytest.raises(DslImportFailed) as caught:
        load(fixture("minimal_not_an_app.yml"))
    error = caught.value
    assert (error.code, type(error)) == ("workflow_import_invalid", DslImportFailed)
    assert [(p["node_id"], p["field"]) for p in error.details["problems"]] == [
        ("sketch-start", "data"), ("sketch-answer", "data")]


@pytest.mark.parametrize("mode", ["chat", "agent-chat", "completion"])
def test_other_app_modes_are_not_workflows(mode: str) -> None:
    with pytest.raises(DslImportUnsupported, match="Stratus imports Dify workflow and chatflow apps"):
        load(app(START, mode=mode))


# -- what each fixture maps to -----------------------------------------------------------------
def test_start_and_end_mapping() -> None:
    document = load(fixture("simple_passthrough_workflow.yml")).document
    start = node(document, "1754154032319")
    assert (start.title, start.config["variables"]) == ("Start", [
        {"variable": "query", "label": "query", "type": "string", "required": True, "default": None, "options": [],
         "max_length": None, "description": ""}])
    assert node(document, "1754154034161").config == {
        "outputs": [{"variable": "query", "value_selector": ["1754154032319", "query"], "value_type": "string"}]}
    assert start.position is not None and (start.position.x, start.position.y) == (30, 227)

    bare = load(fixture("end_node_without_value_type_field_workflow.yml")).document
    assert bare.nodes[0].config["variables"][0]["default"] is None  # Dify's "" for "no default"
    assert bare.nodes[0].config["variables"][0]["max_length"] == 48
    assert bare.nodes[1].config["outputs"][0]["value_type"] is None
    assert bare.nodes[1].title == "输出"


def test_if_else_mapping() -> None:
    document = load(fixture("conditional_hello_branching_workflow.yml")).document
    assert node(document, "1754217359748").config == {"cases": [{
        "case_id": "true", "logical_operator": "and",
        "conditions": [{"variable_selector": ["1754154032319", "query"], "comparison_operator": "contains",
                        "value": "hello"}]}]}
    assert {(e.target, e.source_handle) for e in document.outgoing("1754217359748")} == {
        ("1754154034161", "true"), ("1754217363584", "false")}
    streaming = load(fixture("conditional_streaming_vs_template_workflow.yml")).document
    condition = node(streaming, "1754296900311").config["cases"][0]["conditions"][0]
    assert (condition["comparison_operator"], condition["value"]) == ("=", "1")  # varType dropped, value kept


def test_llm_mapping_and_model_substitution() -> None:
    result = load(fixture("basic_llm_chat_workflow.yml"))
    llm = node(result.document, "llm_node")
    assert llm.config["prompt_template"] == [{"role": "system", "text": "You are a helpful assistant."},
                                             {"role": "user", "text": "{{#start_node.query#}}"}]
    assert llm.config["model"] == {"name": "house-model", "temperature": None, "top_p": None, "max_tokens": None,
                                   "stop": []}
    assert result.substitutions == [ModelSubstitution("llm_node", "openai/gpt-3.5-turbo", "house-model")]
    assert result.substitutions[0].as_dict() == {"node_id": "llm_node", "requested": "openai/gpt-3.5-turbo",
                                                 "used": "house-model"}
    assert llm.retry.max_attempts == 1 and llm.description == "LLM Node for testing"

    kept = load(fixture("basic_llm_chat_workflow.yml"), models=lambda name: name == "gpt-3.5-turbo")
    assert kept.substitutions == [] and node(kept.document, "llm_node").config["model"]["name"] == "gpt-3.5-turbo"

    tenant_default = load(fixture("basic_llm_chat_workflow.yml"), models=set(), default=None)
    assert tenant_default.substitutions == [ModelSubstitution("llm_node", "openai/gpt-3.5-turbo", None)]
    assert node(tenant_default.document, "llm_node").config["model"]["name"] is None

    streaming = load(fixture("conditional_streaming_vs_template_workflow.yml"))
    assert streaming.substitutions == []
    assert node(streaming.document, "1754239044238").config["model"]["temperature"] == 0.7
    assert node(streaming.document, "1754239044238").config["model"]["name"] == "gpt-4o"


def test_aggregator_groups_mapping() -> None:
    document = load(fixture("dual_switch_variable_aggregator_workflow.yml")).document
    config = node(document, "1754405693104").config
    assert config["groups"] == [
        {"group_name": "Group1", "output_type": "string",
         "variables": [["1754405621378", "output"], ["1754405636857", "output"]]},
        {"group_name": "Group2", "output_type": "string",
         "variables": [["1754405668235", "output"], ["1754405680809", "output"]]}]
    assert config["variables"] == [["1754405621378", "output"], ["1754405636857", "output"]]


def test_http_code_and_template_mapping() -> None:
    document = load(fixture("builder_restricted/http_default_output.yml")).document
    http = node(document, "http")
    assert (http.error_strategy, http.default_value) == ("default_value", {"status_code": 599,
                                                                           "body": "denied default"})
    assert http.config["url"] == "https://sample.invalid/{{#start.path#}}"
    assert (http.config["method"], http.config["headers"], http.config["body"]) == (
        "GET", [], {"type": "none", "data": ""})
    code = node(load(fixture("builder_restricted/code_increment.yml")).document, "code")
    assert code.config == {"code_language": "python3", "code": 'def main(n): return {"result": n + 1}',
                           "variables": [{"variable": "n", "value_selector": ["start", "n"]}],
                           "outputs": {"result": {"type": "number"}}}
    parallel = load(fixture("conditional_parallel_code_execution_workflow.yml")).document
    assert node(parallel, "1754230738434").config["code"].startswith("\ndef main() -> dict:")  # kept verbatim
    assert [o["variable"] for o in node(parallel, "1754230796033").config["outputs"]] == ["1", "2", "3"]
    greeting = node(load(fixture("builder_restricted/template_greeting.yml")).document, "template")
    assert greeting.config == {"template": "Hello, {{ name }}!",
                               "variables": [{"variable": "name", "value_selector": ["start", "name"]}]}


# -- each Dify field, in files written for the test --------------------------------------------
def test_http_request_fields() -> None:
    http = {"id": "http", "data": {
        "type": "http-request", "method": "post", "url": "https://api.test/{{#start.query#}}",
        "headers": "Accept: application/json\nX-Trace:{{#start.query#}}\n\n", "params": "q: a:b\nflag",
        "authorization": {"type": "api-key", "config": {"type": "custom", "api_key": "k-1", "header": "X-Key"}},
        "body": {"type": "json", "data": [{"key": "", "type": "text", "value": '{"q": "{{#start.query#}}"}'}]},
        "timeout": {"connect": 5, "read": 900, "write": None},
        "retry_config": {"retry_enabled": True, "max_retries": 3, "retry_interval": 250},
        "error_strategy": "fail-branch", "ssl_verify": False}}
    failed = {"id": "failed", "data": {"type": "end", "outputs": [
        {"variable": "error", "value_selector": ["http", "error_message"]}]}}
    result = load(app(START, http, end(body=["http", "body"]), failed,
                      edges=[("start", "source", "http"), ("http", "source", "end"),
                             ("http", "fail-branch", "failed")]))
    imported = node(result.document, "http")
    assert imported.config["method"] == "POST"
    assert imported.config["headers"] == [{"key": "Accept", "value": "application/json"},
                                          {"key": "X-Trace", "value": "{{#start.query#}}"}]
    assert imported.config["params"] == [{"key": "q", "value": "a:b"}, {"key": "flag", "value": ""}]
    assert imported.config["authorization"] == {"type": "api-key", "scheme": "custom", "header": "X-Key",
                                                "api_key": "k-1"}
    assert imported.config["body"] == {"type": "json", "data": '{"q": "{{#start.query#}}"}'}
    assert imported.config["timeout"] == {"connect_s": 5, "read_s": 600, "write_s": 20}
    assert (imported.retry.max_attempts, imported.retry.interval_ms) == (4, 250)
    assert imported.error_strategy == "fail_branch"
    assert validate_document(result.document) == []
    assert result.warnings == [
        "node http: read timeout 900 is outside 1..600; 600 is used",
        "node http: ssl_verify: false was dropped: Stratus always verifies TLS certificates"]

    form = {"id": "http", "data": {"type": "http-request", "method": "get", "url": "https://api.test",
                                   "authorization": {"type": "api-key", "config": {"type": "bearer", "api_key": "t"}},
                                   "body": {"type": "form-data", "data": [{"key": "a", "type": "text", "value": "1"}]},
                                   "headers": "", "params": ""}}
    imported = node(load(app(START, form, end(status=["http", "status_code"]))).document, "http")
    assert imported.config["body"] == {"type": "form-data", "data": [{"key": "a", "type": "text", "value": "1"}]}
    assert imported.config["authorization"]["header"] == "Authorization"


def test_llm_fields() -> None:
    llm = {"id": "llm", "data": {
        "type": "llm", "model": {"provider": "langgenius/openai/openai", "name": "gpt-4o", "mode": "chat",
                                 "completion_params": {"temperature": 3, "top_p": 0.5, "max_tokens": 512,
                                                       "stop": ["END"], "presence_penalty": 0.1}},
        "prompt_template": [{"id": "x", "role": "system", "text": " Be brief. "},
                            {"role": "user", "text": "{{#context#}} {{#start.query#}}"}],
        "context": {"enabled": True, "variable_selector": ["start", "query"]},
        "structured_output_enabled": True,
        "structured_output": {"schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "vision": {"enabled": True}, "memory": {"window": {"enabled": True, "size": 5}}}}
    result = load(app(START, llm, end(text=["llm", "structured_output"])))
    config = node(result.document, "llm").config
    assert config["model"] == {"name": "gpt-4o", "temperature": 2, "top_p": 0.5, "max_tokens": 512, "stop": ["END"]}
    assert config["prompt_template"][0] == {"role": "system", "text": " Be brief. "}
    assert config["context"] == {"enabled": True, "variable_selector": ["start", "query"]}
    assert config["structured_output"] == {"enabled": True,
                                           "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}
    assert validate_document(result.document) == []
    assert result.warnings == [
        "node llm: temperature 3 is outside 0..2; 2 is used",
        "node llm: completion parameters presence_penalty have no Stratus equivalent and were dropped",
        "node llm: vision (image inputs) was turned off: Stratus workflows take no files yet"]

    completion = {"id": "llm", "data": {"type": "llm", "model": {"provider": "stratus", "name": "default"},
                                        "prompt_template": {"text": "Summarise {{#start.query#}}"}}}
    result = load(app(START, completion, end(text=["llm", "text"])))
    assert node(result.document, "llm").config["prompt_template"] == [
        {"role": "user", "text": "Summarise {{#start.query#}}"}]
    assert node(result.document, "llm").config["model"]["name"] is None and result.substitutions == []


def test_fields_that_set_nothing_are_dropped_without_a_warning() -> None:
    llm = {"id": "llm", "data": {"type": "llm", "model": {"provider": "x", "name": "gpt-4o"},
                                 "prompt_template": [{"role": "user", "text": "hi"}],
                                 "vision": {"enabled": False, "configs": {"variable_selector": []}},
                                 "variables": [], "reasoning_format": "tagged", "memory": {"window": {"size": 5}},
                                 "_isCandidate": True, "isInIteration": False, "version": "1"}}
    assert load(app(START, llm, end(t=["llm", "text"]))).warnings == []
    llm["data"]["reasoning_format"] = "separated"
    assert load(app(START, llm, end(t=["llm", "text"]))).warnings == [
        "node llm: reasoning_format 'separated' was dropped: Stratus has no separate reasoning output"]


def test_knowledge_retrieval_fields() -> None:
    kr = {"id": "kr", "data": {
        "type": "knowledge-retrieval", "query_variable_selector": ["start", "query"],
        "dataset_ids": [KB, "aGVsbG8gd29ybGQ="], "retrieval_mode": "multiple",
        "multiple_retrieval_config": {"top_k": 6, "score_threshold": 0.4, "reranking_enable": False,
                                      "reranking_mode": "weighted_score",
                                      "weights": {"vector_setting": {"vector_weight": 0.3},
                                                  "keyword_setting": {"keyword_weight": 0.7}}},
        "metadata_filtering_mode": "manual"}}
    result = load(app(START, kr, end(r=["kr", "result"])))
    config = node(result.document, "kr").config
    assert config["knowledge_base_ids"] == [KB, "aGVsbG8gd29ybGQ="]  # kept; validation says which is no id
    assert config["retrieval"] == {"mode": "hybrid", "top_k": 6, "score_threshold": 0.4, "semantic_weight": 0.3,
                                   "rerank": False}
    assert result.warnings == [
        "node kr: dataset ids aGVsbG8gd29ybGQ= are encrypted by Dify's export (DSL_EXPORT_ENCRYPT_DATASET_ID); "
        "choose the tenant's knowledge bases instead",
        "node kr: metadata filtering was dropped: Stratus searches every document of the knowledge bases"]
    assert [p.code for p in validate_document(result.document)] == ["invalid_knowledge_base_id"]


def test_legacy_if_else_and_aggregator_forms() -> None:
    legacy = {"id": "if", "data": {"type": "if-else", "logical_operator": "or", "conditions": [
        {"variable_selector": ["start", "query"], "comparison_operator": "is", "value": "a"},
        {"variable_selector": ["start", "query"], "comparison_operator": "is", "value_type": "value_selector",
         "value_selector": ["start", "query"]}]}}
    old_aggregator = {"id": "agg", "data": {"type": "variable-assigner", "output_type": "string",
                                            "variables": [["start", "query"]]}}
    document = load(app(START, legacy, old_aggregator, end(out=["agg", "output"]),
                        edges=[("start", "source", "if"), ("if", "true", "agg"), ("agg", "source", "end")])).document
    assert node(document, "if").config["cases"] == [{"case_id": "true", "logical_operator": "or", "conditions": [
        {"variable_selector": ["start", "query"], "comparison_operator": "is", "value": "a"},
        {"variable_selector": ["start", "query"], "comparison_operator": "is", "value": "{{#start.query#}}"}]}]
    assert node(document, "agg").type == "variable_aggregator"
    assert validate_document(document) == []


def test_start_input_types() -> None:
    start = {"id": "start", "data": {"type": "start", "variables": [
        {"variable": "p", "type": "paragraph", "label": "P", "max_length": 0, "hint": "say it"},
        {"variable": "s", "type": "select", "options": ["a", "b"], "default": "b", "required": True},
        {"variable": "n", "type": "number", "default": "3", "options": ["x"]},
        {"variable": "c", "type": "checkbox", "default": "false"},
        {"variable": "j", "type": "json_object", "default": '{"k": 1}', "placeholder": "{}"}]}}
    result = load(app(start, end(p=["start", "p"])))
    variables = {v["variable"]: v for v in result.document.nodes[0].config["variables"]}
    assert variables["p"] == {"variable": "p", "label": "P", "type": "string", "required": False, "default": None,
                              "options": [], "max_length": None, "description": "say it"}
    assert (variables["s"]["options"], variables["s"]["default"]) == (["a", "b"], "b")
    assert (variables["n"]["type"], variables["n"]["default"], variables["n"]["options"]) == ("number", 3, [])
    assert (variables["c"]["type"], variables["c"]["default"]) == ("boolean", False)
    assert (variables["j"]["type"], variables["j"]["default"]) == ("object", {"k": 1})
    assert result.warnings == [
        "node start: the options of the number input 'n' were dropped (only select inputs have options)",
        "node start: the placeholder of input 'j' has no Stratus equivalent and was dropped"]
    assert validate_document(result.document) == []


def test_features_stratus_does_not_run_are_refused_all_at_once() -> None:
    start = {"id": "start", "data": {"type": "start", "variables": [{"variable": "f", "type": "external_data_tool"}]}}
    llm = {"id": "llm", "data": {"type": "llm", "model": {"provider": "x", "name": "gpt-4o"},
                                 "prompt_template": [{"role": "user", "edition_type": "jinja2", "text": "",
                                                      "jinja2_text": "{{ f }}"}]}}
    code = {"id": "code", "data": {"type": "code", "code_language": "javascript", "code": "x",
                                   "outputs": {"r": {"type": "array[file]"}}}}
    http = {"id": "http", "data": {"type": "http-request", "method": "post", "url": "https://x.test",
                                   "body": {"type": "binary", "data": []}}}
    branch = {"id": "if", "data": {"type": "if-else", "cases": [{"case_id": "a", "conditions": [
        {"variable_selector": ["start", "f"], "comparison_operator": "exists",
         "sub_variable_condition": {"conditions": [{"key": "size"}]}}]}]}}
    tool = {"id": "tool", "data": {"type": "tool"}}
    with pytest.raises(DslImportUnsupported) as caught:
        load(app(start, llm, code, http, branch, tool, end()))
    assert [(p["node_id"], p["field"]) for p in caught.value.details["problems"]] == [
        ("start", "data.variables[0].type"), ("llm", "data.prompt_template[0].edition_type"),
        ("code", "data.code_language"), ("code", "data.outputs.r.type"), ("http", "data.body.type"),
        ("if", "data.cases[0].conditions[0].comparison_operator"),
        ("if", "data.cases[0].conditions[0].sub_variable_condition"), ("tool", "data.provider_id")]
    assert "external_data_tool inputs (node start)" in caught.value.message
    assert "javascript code (it runs Python 3) (node code)" in caught.value.message


def test_dropped_fields_are_listed_never_silent() -> None:
    template = {"id": "t", "data": {"type": "template-transform", "template": "x", "variables": [],
                                    "desc": "d" * 2100, "frobnicate": {"on": True}, "selected": True,
                                    "retry_config": {"retry_enabled": True, "max_retries": 20,
                                                     "exponential_backoff": {"enabled": True}}}}
    note = {"id": "note", "data": {"type": "", "text": "remember"}}
    result = load(app(START, template, note, end(out=["t", "output"]),
                      edges=[("start", "source", "t"), ("t", "source", "end")]))
    assert [n.id for n in result.document.nodes] == ["start", "t", "end"]
    assert result.warnings == [
        "node t: Dify field 'frobnicate' has no Stratus equivalent and was dropped",
        "node t: the description is longer than 2000 characters; cut to 2000",
        "node t: max_retries 20 is outside 0..9; 9 is used",
        "node t: exponential backoff between retries is not supported; retries wait retry_interval",
        "node note: a canvas note; notes are not imported"]
    assert node(result.document, "t").retry.max_attempts == 10


def test_app_level_warnings_and_versions() -> None:
    data = yaml.safe_load(app(START, end(q=["start", "query"]), version="0.5.0"))
    data["workflow"]["environment_variables"] = [{"name": "API_KEY", "value_type": "secret"}]
    data["workflow"]["features"] = {"file_upload": {"enabled": True}}
    result = load(yaml.safe_dump(data))
    assert result.warnings == [
        "environment variables (API_KEY) are not imported: Stratus has none yet; validation reports each reference "
        "to them", "file upload is not imported: Stratus workflows take no files yet"]
    newer = load(app(START, end(q=["start", "query"]), version="0.9.0"))
    assert newer.warnings[0].startswith("DSL version 0.9.0 is newer than the versions Stratus was checked against")
    with pytest.raises(DslImportUnsupported, match="newer than Stratus reads"):
        load(app(START, end(q=["start", "query"]), version="1.0.0"))
    with pytest.raises(DslImportFailed, match="not a version"):
        load(app(START, end(q=["start", "query"]), version="latest"))


# -- malformed files ---------------------------------------------------------------------------
@pytest.mark.parametrize(("content", "message"), [
    ("app: [unclosed", "The file is not valid YAML at line "),
    ("- just\n- a list\n", "its YAML is not a mapping"),
    ("kind: rag_pipeline\napp: {mode: workflow}\n", "The file's kind is 'rag_pipeline'"),
    ("version: 0.3.1\nname: x\n", "no app: section"),
    ("app: {mode: workflow}\nkind: app\n", "has no workflow.graph"),
    ("app: {name: x}\nkind: app\n", "The app's mode is None"),
    ("base: &a [1, 2]\nnodes: *a\n", "The file uses a YAML alias (*a) at line 2: aliases are not accepted"),
    ("nodes: " + "[" * 65 + "]" * 65, "The file nests deeper than 64 levels (line 1)"),
    ("[" * 100_000 + "]" * 100_000, "The file nests deeper than 64 levels"),
    ("a:\n" + "".join(" " * i + "- b:\n" for i in range(0, 200, 2)), "The file nests deeper than 64 levels"),
    ("nodes: {a: 1}\n", "the graph's nodes (and edges) must be lists"),
    ("nodes: []\nblob: !!binary aGVsbG8=\n", "The value at blob is YAML bytes"),
    ("nodes:\n- data: {x: .inf}\n", "The value at nodes[0].data.x is inf"),
    ("nodes: [" + "1" * 5000 + "]\n", "a value Stratus cannot read"),
    ("nodes: []\n~: x\n", "The key None at the top is not text"),
    ("nodes:\n- id: 'bad id'\n  data: {type: start}\n", "node id 'bad id' must be 1 to 64 letters"),
])
def test_malformed_files_are_a_clear_422(content: str, message: str) -> None:
    with pytest.raises(DslImportFailed) as caught:
        load(content)
    assert caught.value.status == 422
    assert caught.value.code == "workflow_import_invalid"
    assert message in caught.value.message


def test_too_large_files_are_refused_before_parsing() -> None:
    with pytest.raises(DslImportFailed) as caught:
        load("#" * (MAX_DSL_CHARS + 1))
    assert caught.value.details["max_chars"] == MAX_DSL_CHARS
    assert "the most imported is" in caught.value.message


def test_dates_stay_text() -> None:
    start = {"id": "start", "data": {"type": "start", "variables": [
        {"variable": "day", "type": "text-input", "default": "2024-01-01"}]}}
    content = app(start, end(day=["start", "day"])).replace("default: '2024-01-01'", "default: 2024-01-01")
    assert "default: 2024-01-01\n" in content
    assert load(content).document.nodes[0].config["variables"][0]["default"] == "2024-01-01"


def test_a_node_shape_dify_allows_but_stratus_cannot_hold_is_located() -> None:
    too_long_title = {"id": "t", "data": {"type": "template-transform", "template": "x",
                                          "error_strategy": "explode"}}
    with pytest.raises(DslImportFailed) as caught:
        load(app(START, too_long_title, end(out=["t", "output"])))
    assert caught.value.details["problems"] == [
        {"node_id": "t", "field": "data.error_strategy", "code": "invalid_dsl",
         "message": "unknown error_strategy 'explode'"}]


def test_an_unfinished_dify_draft_imports_and_validation_locates_its_problems() -> None:
    http = {"id": "http", "data": {"type": "http-request", "method": "get", "url": ""}}
    result = load(app(START, http, end(status=["http", "status_code"])))
    assert [(p.node_id, p.field, p.code) for p in validate_document(result.document)] == [
        ("http", "config.url", "invalid_config")]


# -- export ------------------------------------------------------------------------------------
def _everything() -> WorkflowDocument:
    """A Stratus document using what Dify has no field for, and every node type."""
    return WorkflowDocument.model_validate({"nodes": [
        {"id": "start", "type": "start", "position": {"x": 0, "y": 0}, "config": {"variables": [
            {"variable": "query", "type": "string", "required": True, "max_length": 300, "description": "ask"},
            {"variable": "tags", "type": "array[string]", "default": ["a"]},
            {"variable": "level", "type": "number", "options": [1, 2]}]}},
        {"id": "kr", "type": "knowledge_retrieval", "position": {"x": 300, "y": 0}, "timeout_s": 45,
         "config": {"query_variable_selector": ["start", "query"], "knowledge_base_ids": [KB],
                    "retrieval": {"mode": "semantic", "top_k": 3, "rerank": True}}},
        {"id": "llm", "type": "llm", "position": {"x": 600, "y": 0},
         "retry": {"max_attempts": 3, "interval_ms": 500},
         "config": {"model": {"name": None, "temperature": 0.2, "stop": ["###"]},
                    "prompt_template": [{"role": "system", "text": "{{#context#}}"},
                                        {"role": "user", "text": "{{#start.query#}}"}],
                    "context": {"enabled": True, "variable_selector": ["kr", "result"]}}},
        {"id": "if", "type": "if_else", "position": {"x": 900, "y": 0}, "config": {"cases": [
            {"case_id": "long", "logical_operator": "or", "conditions": [
                {"variable_selector": ["llm", "text"], "comparison_operator": "contains", "value": " "},
                {"variable_selector": ["start", "level"], "comparison_operator": "≥", "value": 2}]}]}},
        {"id": "http", "type": "http_request", "position": {"x": 1200, "y": 0}, "error_strategy": "fail_branch",
         "config": {"method": "PUT", "url": "https://api.test/{{#start.query#}}",
                    "headers": [{"key": "X-A", "value": "1"}], "params": [{"key": "p", "value": "{{#llm.text#}}"}],
                    "body": {"type": "x-www-form-urlencoded", "data": [{"key": "t", "value": "{{#llm.text#}}"}]},
                    "authorization": {"type": "api-key", "scheme": "basic", "api_key": "u:p"},
                    "timeout": {"connect_s": 2.5, "read_s": 30, "write_s": 30},
                    "max_response_bytes": 1000, "follow_redirects": False}},
        {"id": "code", "type": "code", "position": {"x": 1200, "y": 200}, "error_strategy": "default_value",
         "default_value": {"n": 0, "items": []},
         "config": {"code": "def main(t):\n    return {'n': len(t), 'items': [t]}\n",
                    "variables": [{"variable": "t", "value_selector": ["llm", "text"]}],
                    "outputs": {"n": {"type": "number"}, "items": {"type": "array[string]"}}}},
        {"id": "tpl", "type": "template", "position": {"x": 1500, "y": 0},
         "config": {"template": "{{ a }}\n", "variables": [{"variable": "a", "value_selector": ["http", "body"]}]}},
        {"id": "agg", "type": "variable_aggregator", "position": {"x": 1800, "y": 0},
         "config": {"output_type": "string", "variables": [["tpl", "output"], ["http", "error_message"]]}},
        {"id": "end", "type": "end", "position": {"x": 2100, "y": 0},
         "config": {"outputs": [{"variable": "answer", "value_selector": ["agg", "output"], "value_type": "string"},
                                {"variable": "n", "value_selector": ["code", "n"]}]}},
    ], "edges": [
        {"source": "start", "target": "kr"}, {"source": "kr", "target": "llm"},
        {"source": "llm", "target": "if"}, {"source": "if", "target": "http", "source_handle": "long"},
        {"source": "if", "target": "code", "source_handle": "false"},
        {"source": "http", "target": "tpl"}, {"source": "http", "target": "agg", "source_handle": "fail-branch"},
        {"source": "tpl", "target": "agg"}, {"source": "agg", "target": "end"}, {"source": "code", "target": "end"},
    ]})


def test_a_stratus_document_survives_export_and_import_unchanged() -> None:
    document = _everything()
    assert validate_document(document) == []
    exported = export_dify(document, name="Everything", description="all of it")
    result = load(exported, models=set(), default=None)
    assert (result.name, result.description, result.warnings, result.substitutions) == (
        "Everything", "all of it", [], [])
    canonical = document.model_copy(deep=True)
    for item in canonical.nodes:
        item.config = parse_config(item.type, item.config).model_dump(mode="json", by_alias=True)
    assert result.document == canonical
    # What Dify has no field for travels in the extension, and only that.
    nodes = {n["id"]: n["data"] for n in yaml.safe_load(exported)["workflow"]["graph"]["nodes"]}
    # Semantic search is Dify's weighted search all on vectors; the hybrid weight kept for later is Stratus's.
    assert nodes["kr"][EXTENSION_KEY] == {"/timeout_s": 45, "/config/retrieval/mode": "semantic",
                                          "/config/retrieval/semantic_weight": 0.7}
    assert nodes["http"][EXTENSION_KEY] == {"/config/max_response_bytes": 1000, "/config/follow_redirects": False}
    assert nodes["start"][EXTENSION_KEY] == {"/config/variables/1/type": "array[string]",
                                             "/config/variables/2/options": [1, 2]}
    assert {name for name, data in nodes.items() if EXTENSION_KEY in data} == {"kr", "http", "start"}


def test_the_export_is_the_structure_difys_importer_reads() -> None:
    data = yaml.safe_load(export_dify(_everything(), name="Everything", description=""))
    assert (data["kind"], data["version"], data["app"]["mode"], data["app"]["name"]) == (
        "app", "0.3.1", "workflow", "Everything")
    workflow = data["workflow"]
    assert (workflow["features"], workflow["environment_variables"], workflow["conversation_variables"]) == (
        {}, [], [])
    nodes = {n["id"]: n for n in workflow["graph"]["nodes"]}
    assert {n["type"] for n in nodes.values()} == {"custom"}
    assert {n["data"]["type"] for n in nodes.values()} == {
        "start", "knowledge-retrieval", "llm", "if-else", "http-request", "code", "template-transform",
        "variable-aggregator", "end"}
    assert all(isinstance(n["data"]["title"], str) and "position" in n for n in nodes.values())
    assert nodes["llm"]["data"]["model"] == {"provider": "stratus", "name": "default", "mode": "chat",
                                             "completion_params": {"temperature": 0.2, "stop": ["###"]}}
    assert nodes["llm"]["data"]["retry_config"] == {"retry_enabled": True, "max_retries": 2, "retry_interval": 500}
    assert nodes["http"]["data"]["error_strategy"] == "fail-branch"
    assert nodes["http"]["data"]["authorization"] == {"type": "api-key", "config": {
        "type": "basic", "api_key": "u:p", "header": "Authorization"}}
    assert (nodes["http"]["data"]["method"], nodes["http"]["data"]["headers"], nodes["http"]["data"]["timeout"]) == (
        "put", "X-A:1", {"connect": 2.5, "read": 30, "write": 30})
    assert nodes["code"]["data"]["default_value"] == [{"key": "n", "type": "number", "value": 0},
                                                      {"key": "items", "type": "array[string]", "value": []}]
    assert nodes["code"]["data"]["outputs"] == {"n": {"type": "number", "children": None},
                                                "items": {"type": "array[string]", "children": None}}
    case = nodes["if"]["data"]["cases"][0]
    assert (case["id"], case["case_id"], [c["varType"] for c in case["conditions"]]) == (
        "long", "long", ["string", "number"])
    assert nodes["kr"]["data"]["multiple_retrieval_config"]["weights"]["vector_setting"]["vector_weight"] == 1.0
    edges = {e["id"]: e for e in workflow["graph"]["edges"]}
    assert "if-long-http-target" in edges and "http-fail-branch-agg-target" in edges
    assert edges["if-long-http-target"] | {"data": None} == {
        "id": "if-long-http-target", "source": "if", "sourceHandle": "long", "target": "http",
        "targetHandle": "target", "type": "custom", "zIndex": 0, "data": None}
    assert edges["if-long-http-target"]["data"]["sourceType"] == "if-else"


def test_positions_are_laid_out_when_a_document_has_none() -> None:
    document = _everything().model_copy(deep=True)
    for item in document.nodes:
        item.position = None
    data = yaml.safe_load(export_dify(document, name="x"))
    positions = {n["id"]: (n["position"]["x"], n["position"]["y"]) for n in data["workflow"]["graph"]["nodes"]}
    assert positions["start"] == (30.0, 30.0)
    assert positions["kr"][0] > positions["start"][0] and positions["end"][0] > positions["agg"][0]
    assert len(set(positions.values())) == len(positions)


def test_an_unfinished_draft_exports_and_comes_back_as_it_was() -> None:
    draft = WorkflowDocument.model_validate({"nodes": [
        {"id": "start", "type": "start", "position": {"x": 0, "y": 0}},
        {"id": "http", "type": "http_request", "position": {"x": 1, "y": 1}, "config": {"method": "GET"}}],
        "edges": [{"source": "start", "target": "http"}]})
    exported = export_dify(draft, name="draft")
    back = load(exported).document
    assert back.node("http").config == {"method": "GET"}
    assert back.node("start").config == {"variables": []}


def test_a_stale_extension_entry_is_ignored_with_a_warning() -> None:
    data = yaml.safe_load(export_dify(_everything(), name="x"))
    kr = next(n for n in data["workflow"]["graph"]["nodes"] if n["id"] == "kr")
    kr["data"][EXTENSION_KEY]["/config/retrieval/gone/deeper"] = 1
    kr["data"][EXTENSION_KEY]["/id"] = "other"
    result = load(yaml.safe_dump(data, allow_unicode=True), models=set(), default=None)
    assert result.document.node("kr").config["retrieval"]["mode"] == "semantic"
    assert result.warnings == [
        "node kr: the 'stratus' entry '/config/retrieval/gone/deeper' names nothing in the node (it was edited in "
        "Dify); ignored", "node kr: the 'stratus' entry '/id' cannot change a node's id or type"]


def test_export_accepts_the_documents_json() -> None:
    document = load(fixture("simple_passthrough_workflow.yml")).document
    from_json = export_dify(copy.deepcopy(document.model_dump(mode="json")), name="echo")
    assert from_json == export_dify(document, name="echo")


# -- robustness --------------------------------------------------------------------------------
def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path, *(leaf for key, item in value.items() for leaf in _leaves(item, (*path, key)))]
    if isinstance(value, list):
        return [path, *(leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index)))]
    return [path]


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    copied = copy.deepcopy(value)
    target = copied
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return copied


@pytest.mark.parametrize("name", ["builder_restricted/http_default_output.yml", "basic_llm_chat_workflow.yml",
                                  "dual_switch_variable_aggregator_workflow.yml",
                                  "increment_loop_with_break_condition_workflow.yml",
                                  "iteration_flatten_output_enabled_workflow.yml"])
def test_any_field_of_any_wrong_shape_is_a_422_or_a_document_never_a_crash(name: str) -> None:
    data = raw(name)
    graph = graph_of(data)
    base = ("workflow", "graph") if "workflow" in data else ()
    paths = [(*base, "nodes", index, "data", *leaf) for index, item in enumerate(graph["nodes"])
             for leaf in _leaves(item["data"]) if leaf]
    paths += [(*base, "edges", *leaf) for leaf in _leaves(graph["edges"]) if leaf]
    assert len(paths) > 30
    outcomes = {"imported": 0, "refused": 0}
    for count, (path, weird) in enumerate((p, w) for p in paths for w in ([1, [2]], {"x": None}, None)):
        content = yaml.dump(_replace(data, path, weird), Dumper=yaml.CSafeDumper, allow_unicode=True)
        try:
            result = load(content)
        except DslImportFailed as exc:
            assert exc.status == 422 and exc.message
            outcomes["refused"] += 1
            continue
        outcomes["imported"] += 1
        validate_document(result.document)
        if count % 5 == 0:
            load(export_dify(result.document, name="x"))
    assert outcomes["imported"] and outcomes["refused"]


def test_an_app_export_without_kind_or_version_is_read_as_dify_does() -> None:
    data = yaml.safe_load(app(START, end(q=["start", "query"])))
    del data["kind"], data["version"]  # Dify assumes kind: app and version 0.1.0
    result = load(yaml.safe_dump(data))
    assert [n.id for n in result.document.nodes] == ["start", "end"] and result.warnings == []
