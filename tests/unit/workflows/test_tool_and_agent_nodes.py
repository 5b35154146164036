"""Tool and agent nodes (docs/workflows.md §13): their configurations and validation, their
executors against in-memory fakes of our own ports (the tools' catalog and executor, the agents'
answers), the publish checks against the tenant's tools and agents, and what a tool's failure
does under each error strategy."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from shared.agents.contract import AgentConfig, ChatAgent
from shared.agents.errors import AgentNotFound, AgentNotPublished
from shared.chat.headless import AgentAnswer
from shared.tools.contract import CallContext, ToolRef, ToolResult, ToolSelection, ToolSpec
from shared.workflows.definition import WorkflowDocument
from shared.workflows.engine.nodes.tool import typed
from shared.workflows.engine.runner import NodeRunner
from shared.workflows.node_targets import agent_node_problems, tool_node_problems
from shared.workflows.validation import validate_document
from tests.support.engine_runs import document, drive, ports

PROVIDER = uuid.uuid4()
FORECAST = ToolRef(str(PROVIDER), "forecast")
FORECAST_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["city"], "properties": {
    "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
    "units": {"type": "string", "enum": ["metric", "imperial"]}}}
SPECS = [ToolSpec(FORECAST, "forecast", "The weather", FORECAST_SCHEMA, "openapi", "weather", 5.0),
         ToolSpec(ToolRef("builtin", "current_time"), "current_time", "Now", {"type": "object", "properties": {
             "timezone": {"type": "string"}}, "additionalProperties": False}, "builtin", "Built-in tools")]


class FakeTools:
    """The tools' catalog and executor: answers ``answer(ref, arguments)``, records the calls."""

    def __init__(self, answer: Callable[[ToolRef, Mapping[str, Any]], ToolResult] | None = None,
                 specs: list[ToolSpec] | None = None) -> None:
        self.answer = answer or (lambda ref, args: ToolResult("ok", json.dumps({"echo": dict(args)}), 3))
        self.specs = SPECS if specs is None else specs
        self.calls: list[tuple[uuid.UUID, ToolRef, dict[str, Any], float | None]] = []
        self.listed: list[list[ToolSelection] | None] = []

    def list(self, tenant_id: uuid.UUID, selections: Sequence[ToolSelection] | None = None, *,
             refresh: bool = False) -> list[ToolSpec]:
        self.listed.append(list(selections) if selections is not None else None)
        wanted = {(s.source, name) for s in selections or [] for name in s.names or ()}
        return [spec for spec in self.specs if selections is None or (spec.ref.source, spec.ref.name) in wanted]

    def call(self, tenant_id: uuid.UUID, ref: ToolRef | str, arguments: Mapping[str, Any],
             timeout_s: float | None = None, *, context: CallContext | None = None) -> ToolResult:
        parsed = ToolRef.parse(ref)
        self.calls.append((tenant_id, parsed, dict(arguments), timeout_s))
        return self.answer(parsed, arguments)


def tool_workflow(node_extra: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                  outputs: dict[str, list[str]] | None = None) -> WorkflowDocument:
    node = {"id": "weather", "type": "tool", **(node_extra or {}), "config": config or {
        "tool": str(FORECAST), "arguments": {
            "city": {"type": "selector", "value": ["start", "city"]},
            "days": {"type": "template", "value": "{{#start.days#}}"},
            "units": {"type": "constant", "value": "metric"}},
        "outputs": [{"variable": "summary", "type": "string"}]}}
    return document([
        {"id": "start", "type": "start", "config": {"variables": [
            {"variable": "city", "type": "string"}, {"variable": "days", "type": "string"}]}},
        node,
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": k, "value_selector": v} for k, v in (outputs or {
                "text": ["weather", "text"], "json": ["weather", "json"], "status": ["weather", "status"],
                "summary": ["weather", "summary"]}).items()]}},
    ], [("start", "weather"), ("weather", "end")])


# --- the tool node ---------------------------------------------------------------------------------

def test_a_tool_node_calls_its_tool_with_its_arguments_and_answers_text_json_status_and_fields() -> None:
    tools = FakeTools(lambda ref, args: ToolResult("ok", json.dumps({"summary": "sunny", "days": args["days"]}), 12))
    tenant = uuid.uuid4()
    run = drive(tool_workflow(), NodeRunner(ports(tools=tools)), {"city": "Lyon", "days": "3"}, tenant_id=tenant)
    assert run.status == "succeeded", run.results["weather"].error
    [(called_tenant, ref, arguments, timeout_s)] = tools.calls
    # The selector as it is, the template rendered and typed as the schema asks (an integer).
    assert (called_tenant, ref, arguments) == (tenant, FORECAST, {"city": "Lyon", "days": 3, "units": "metric"})
    assert timeout_s == 300  # the node's default; the tool's own (5 s) bounds it in the executor
    assert run.outputs == {"text": '{"summary": "sunny", "days": 3}', "json": {"summary": "sunny", "days": 3},
                           "status": "ok", "summary": "sunny"}
    assert run.results["weather"].inputs == {"tool": str(FORECAST),
                                             "arguments": {"city": "Lyon", "days": "3", "units": "metric"}}


def test_a_text_answer_has_no_json_and_an_absent_variable_leaves_its_argument_out() -> None:
    tools = FakeTools(lambda ref, args: ToolResult("ok", "plain words", 1))
    config = {"tool": str(FORECAST), "arguments": {"city": {"type": "selector", "value": ["start", "city"]}},
              "outputs": [{"variable": "summary"}]}
    run = drive(tool_workflow(config=config), NodeRunner(ports(tools=tools)), {})
    assert run.outputs == {"text": "plain words", "json": None, "status": "ok", "summary": None}
    assert tools.calls[0][2] == {}
    assert tools.listed == []  # no template argument: no schema needed


@pytest.mark.parametrize(("status", "code"), [("error", "tool_http_error"), ("timeout", "tool_timeout"),
                                              ("refused", "http_request_refused"),
                                              ("invalid_arguments", "tool_invalid_arguments"),
                                              ("not_found", "tool_not_found")])
def test_a_tool_that_does_not_answer_ok_fails_the_node_with_its_code(status: str, code: str) -> None:
    tools = FakeTools(lambda ref, args: ToolResult(status, "HTTP 503: down", 40, error_code=code,  # type: ignore[arg-type]
                                                   details={"status_code": 503}))
    run = drive(tool_workflow(), NodeRunner(ports(tools=tools)), {"city": "Lyon", "days": "1"})
    assert run.status == "failed"
    error = run.results["weather"].error
    assert error is not None and error.code == code
    assert error.details["status"] == status and error.details["tool"] == str(FORECAST)
    assert "HTTP 503: down" in error.message


def test_a_failing_tool_takes_the_fail_branch_or_its_default_values() -> None:
    failing = FakeTools(lambda ref, args: ToolResult("timeout", "no answer in 5 s", 5000, error_code="tool_timeout"))
    branch = document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "city"}]}},
        {"id": "weather", "type": "tool", "error_strategy": "fail_branch", "config": {
            "tool": str(FORECAST), "arguments": {"city": {"type": "selector", "value": ["start", "city"]}}}},
        {"id": "ok", "type": "end", "config": {"outputs": [
            {"variable": "text", "value_selector": ["weather", "text"]}]}},
        {"id": "sorry", "type": "end", "config": {"outputs": [
            {"variable": "why", "value_selector": ["weather", "error_type"]}]}},
    ], [("start", "weather"), ("weather", "ok"), ("weather", "fail-branch", "sorry")])
    run = drive(branch, NodeRunner(ports(tools=failing)), {"city": "Lyon"})
    assert run.status == "succeeded" and run.outputs == {"why": "tool_timeout"}
    defaulted = tool_workflow({"error_strategy": "default_value", "default_value": {"text": "unknown",
                                                                                    "status": "error"}})
    run = drive(defaulted, NodeRunner(ports(tools=failing)), {"city": "Lyon", "days": "1"})
    assert run.status == "succeeded"
    assert run.outputs["text"] == "unknown" and run.outputs["status"] == "error"


def test_template_arguments_take_the_type_their_schema_asks_for() -> None:
    assert typed("3", {"type": "integer"}) == 3
    assert typed("2.5", {"type": "number"}) == 2.5
    assert typed("true", {"type": "boolean"}) is True
    assert typed('{"a": 1}', {"type": "object"}) == {"a": 1}
    assert typed("[1]", {"type": ["array", "null"]}) == [1]
    assert typed("3", {"type": "string"}) == "3"
    assert typed("three", {"type": "integer"}) == "three"  # the tool's validation reports it
    assert typed("3.5", {"type": "integer"}) == "3.5"
    assert typed("x", {}) == "x"


def test_without_a_tools_port_the_node_fails_and_says_why() -> None:
    run = drive(tool_workflow(), NodeRunner(ports()), {"city": "Lyon", "days": "1"})
    assert run.results["weather"].error is not None and run.results["weather"].error.code == "tool_unavailable"


# --- validation ------------------------------------------------------------------------------------

def problems_of(document_: WorkflowDocument) -> list[tuple[str | None, str, str]]:
    return [(p.node_id, p.field, p.code) for p in validate_document(document_)]


def test_validation_locates_a_bad_tool_reference_reserved_outputs_and_dangling_arguments() -> None:
    config = {"tool": "forecast", "arguments": {"city": {"type": "selector", "value": ["nowhere", "x"]},
                                                "days": {"type": "template", "value": "{{#start.nope#}}"}},
              "outputs": [{"variable": "text"}, {"variable": "a"}, {"variable": "a"}]}
    found = problems_of(tool_workflow(config=config, outputs={"a": ["weather", "a"]}))
    assert ("weather", "config.tool", "invalid_tool") in found
    assert ("weather", "config.outputs[0].variable", "invalid_output_name") in found
    assert ("weather", "config.outputs[2].variable", "duplicate_output") in found
    assert ("weather", "config.arguments.city.value", "unknown_node_reference") in found
    assert ("weather", "config.arguments.days.value", "unknown_output") in found


def test_a_selector_argument_must_be_a_selector() -> None:
    config = {"tool": str(FORECAST), "arguments": {"city": {"type": "selector", "value": "start.city"}}}
    found = problems_of(tool_workflow(config=config, outputs={"t": ["weather", "text"]}))
    assert [(n, f.split(".")[:3], c) for n, f, c in found] == [("weather", ["config", "arguments", "city"],
                                                                "invalid_config")]


def test_the_outputs_a_tool_node_declares_are_what_downstream_may_read() -> None:
    assert problems_of(tool_workflow()) == []
    found = problems_of(tool_workflow(outputs={"x": ["weather", "missing"]}))
    assert found == [("end", "config.outputs[0].value_selector", "unknown_output")]


def agent_workflow(agent_id: str = "builtin-quick-answer", prompt: str = "Summarise {{#start.text#}}",
                   inputs: dict[str, str] | None = None) -> WorkflowDocument:
    return document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "text"}]}},
        {"id": "helper", "type": "agent", "config": {"agent_id": agent_id, "prompt": prompt,
                                                     "inputs": inputs or {}}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "answer", "value_selector": ["helper", "text"]},
            {"variable": "tokens", "value_selector": ["helper", "tokens"]}]}},
    ], [("start", "helper"), ("helper", "end")])


def test_validation_of_agent_nodes() -> None:
    assert problems_of(agent_workflow()) == []
    assert problems_of(agent_workflow(str(uuid.uuid4()))) == []
    found = problems_of(agent_workflow("my agent", prompt="  ", inputs={"lang": "{{#ghost.x#}}"}))
    assert ("helper", "config.agent_id", "invalid_agent_id") in found
    assert ("helper", "config.prompt", "missing_prompt") in found
    assert ("helper", "config.inputs.lang", "unknown_node_reference") in found


# --- the agent node ---------------------------------------------------------------------------------

class FakeAgents:
    def __init__(self, pieces: list[str], tokens: int = 42, error: Exception | None = None) -> None:
        self.pieces, self.tokens, self.error = pieces, tokens, error
        self.asked: list[tuple[str, str, dict[str, str], str | None]] = []

    def answer(self, tenant_id: uuid.UUID, agent_id: str, prompt: str, inputs: Mapping[str, str], *,
               user: str | None, cancelled: threading.Event, on_text: Callable[[str], None]) -> AgentAnswer:
        self.asked.append((agent_id, prompt, dict(inputs), user))
        if self.error is not None:
            raise self.error
        for piece in self.pieces:
            on_text(piece)
        return AgentAnswer("".join(self.pieces), self.tokens)


def test_an_agent_node_answers_the_rendered_prompt_streams_its_text_and_counts_tokens() -> None:
    agents = FakeAgents(["Short ", "summary."], tokens=57)
    run = drive(agent_workflow(inputs={"lang": "fr {{#start.text#}}"}), NodeRunner(ports(agents=agents)),
                {"text": "a long text"})
    assert run.outputs == {"answer": "Short summary.", "tokens": 57}
    assert agents.asked == [("builtin-quick-answer", "Summarise a long text", {"lang": "fr a long text"}, "user-1")]
    assert run.chunks("helper") == ["Short ", "summary."]
    assert run.results["helper"].tokens == 57


def test_an_agent_nodes_failures_keep_the_agents_codes() -> None:
    run = drive(agent_workflow(), NodeRunner(ports(agents=FakeAgents([], error=AgentNotPublished()))), {"text": "x"})
    assert run.results["helper"].error is not None and run.results["helper"].error.code == "agent_not_published"
    empty = drive(agent_workflow(prompt="{{#start.text#}}"), NodeRunner(ports(agents=FakeAgents(["x"]))), {"text": ""})
    assert empty.results["helper"].error is not None and empty.results["helper"].error.code == "agent_prompt_empty"


# --- publish checks ----------------------------------------------------------------------------------

def codes(found: list[Any]) -> list[tuple[str | None, str, str]]:
    return [(p.node_id, p.field, p.code) for p in found]


def test_publishing_checks_the_tool_exists_and_takes_the_arguments() -> None:
    tenant = uuid.uuid4()
    assert tool_node_problems(FakeTools(), tenant, tool_workflow()) == []
    assert codes(tool_node_problems(FakeTools(specs=[]), tenant, tool_workflow())) == [
        ("weather", "config.tool", "tool_not_found")]
    config = {"tool": str(FORECAST), "arguments": {
        "days": {"type": "constant", "value": 30}, "units": {"type": "constant", "value": "kelvin"},
        "colour": {"type": "constant", "value": "red"}, "later": {"type": "template", "value": "{{#start.days#}}"}}}
    found = codes(tool_node_problems(FakeTools(), tenant, tool_workflow(config=config, outputs={})))
    assert sorted(found) == sorted([
        ("weather", "config.arguments.days.value", "invalid_argument"),
        ("weather", "config.arguments.units.value", "invalid_argument"),
        ("weather", "config.arguments.colour", "unknown_argument"),
        ("weather", "config.arguments.later", "unknown_argument"),
        ("weather", "config.arguments", "missing_argument")])


def test_publishing_checks_the_agent_exists_is_published_and_answers_outside_a_conversation() -> None:
    class Agents:
        def __init__(self, outcome: Any) -> None:
            self.outcome = outcome

        def resolve_for_chat(self, tenant_id: uuid.UUID, ref: Any, draft: bool = False) -> ChatAgent:
            if isinstance(self.outcome, Exception):
                raise self.outcome
            return ChatAgent(agent=None, config=self.outcome, version=1)  # type: ignore[arg-type]

        def agent_id(self, tenant_id: uuid.UUID, ref: Any) -> uuid.UUID:
            raise AssertionError

    tenant = uuid.uuid4()
    assert agent_node_problems(Agents(AgentConfig()), tenant, agent_workflow()) == []
    assert codes(agent_node_problems(Agents(AgentNotFound()), tenant, agent_workflow())) == [
        ("helper", "config.agent_id", "agent_not_found")]
    assert codes(agent_node_problems(Agents(AgentNotPublished()), tenant, agent_workflow())) == [
        ("helper", "config.agent_id", "agent_not_published")]
    chatflow = AgentConfig.model_validate({"mode": "chatflow"})
    assert codes(agent_node_problems(Agents(chatflow), tenant, agent_workflow())) == [
        ("helper", "config.agent_id", "agent_mode_unsupported")]


# --- Dify ------------------------------------------------------------------------------------------

WORKFLOW_TOOL = ToolSpec(ToolRef("workflow", str(uuid.uuid4())), "daily_report", "Runs it", {
    "type": "object", "properties": {"day": {"type": "string"}}, "additionalProperties": False}, "workflow",
    "Built-in tools")
SEARCH = ToolSpec(ToolRef(str(uuid.uuid4()), "perplexity"), "perplexity", "Search", {
    "type": "object", "properties": {"query": {"type": "string"}, "top_k": {"type": "integer"}},
    "additionalProperties": False}, "openapi", "langgenius/perplexity/perplexity")
TENANT_TOOLS = [*SPECS, WORKFLOW_TOOL, SEARCH]


def dify_app(*nodes: dict[str, Any], mode: str = "workflow") -> str:
    import yaml

    start = {"id": "start", "data": {"type": "start", "title": "Start", "variables": [
        {"variable": "q", "type": "text-input", "label": "q"}]}}
    ids = ["start", *[n["id"] for n in nodes]]
    edges = [{"source": a, "target": b, "sourceHandle": "source"} for a, b in itertools.pairwise(ids)]
    return str(yaml.safe_dump({"app": {"mode": mode, "name": "tools"}, "kind": "app", "version": "0.3.1",
                               "workflow": {"graph": {"nodes": [start, *nodes], "edges": edges}}}))


def test_a_dify_tool_of_a_tenant_provider_of_the_same_name_imports_as_a_tool_node() -> None:
    from shared.workflows.dify import import_dify

    search = {"id": "search", "data": {
        "type": "tool", "title": "Search", "provider_type": "builtin", "tool_name": "perplexity",
        "provider_id": "langgenius/perplexity/perplexity", "provider_name": "langgenius/perplexity/perplexity",
        "tool_parameters": {"query": {"type": "mixed", "value": "Dify {{#start.q#}}"}},
        "tool_configurations": {"top_k": {"type": "constant", "value": 5}, "model": {"type": "constant",
                                                                                      "value": "sonar"},
                                "search_domain_filter": {"type": "mixed", "value": ""}}}}
    clock = {"id": "clock", "data": {"type": "tool", "provider_type": "builtin", "provider_id": "time",
                                     "provider_name": "time", "tool_name": "current_time",
                                     "tool_configurations": {"timezone": {"type": "constant", "value": "UTC"},
                                                             "format": {"type": "mixed", "value": "%Y"}},
                                     "tool_parameters": {}}}
    end = {"id": "end", "data": {"type": "end", "outputs": [
        {"variable": "a", "value_selector": ["search", "text"]},
        {"variable": "b", "value_selector": ["search", "result", "items"]},
        {"variable": "c", "value_selector": ["clock", "json"]}]}}
    result = import_dify(dify_app(search, clock, end), model_names=set(), default_model=None,
                         tools=lambda: TENANT_TOOLS)
    nodes = {node.id: node for node in result.document.nodes}
    assert nodes["search"].type == "tool" and nodes["search"].config == {
        "tool": str(SEARCH.ref), "provider_name": "langgenius/perplexity/perplexity",
        "arguments": {"top_k": {"type": "constant", "value": 5},
                      "query": {"type": "template", "value": "Dify {{#start.q#}}"}},
        "outputs": [{"variable": "result", "type": None}]}
    assert nodes["clock"].config["tool"] == "builtin/current_time"
    assert nodes["clock"].config["arguments"] == {"timezone": {"type": "constant", "value": "UTC"}}
    assert "node search: perplexity takes no argument 'model'; its value was dropped" in result.warnings
    assert "node clock: current_time takes no argument 'format'; its value was dropped" in result.warnings
    assert validate_document(result.document) == []
    assert tool_node_problems(FakeTools(specs=TENANT_TOOLS), uuid.uuid4(), result.document) == []


def test_dify_tool_parameters_of_every_form_become_arguments() -> None:
    from shared.workflows.dify import _tool_argument

    assert _tool_argument({"type": "variable", "value": ["a", "b"]}) == {"type": "selector", "value": ["a", "b"]}
    assert _tool_argument({"type": "mixed", "value": "x {{#a.b#}}"}) == {"type": "template", "value": "x {{#a.b#}}"}
    assert _tool_argument({"type": "constant", "value": False}) == {"type": "constant", "value": False}
    assert _tool_argument("{{#http.body#}}") == {"type": "template", "value": "{{#http.body#}}"}
    assert _tool_argument(3) == {"type": "constant", "value": 3}
    assert _tool_argument({"type": "mixed", "value": ""}) is None
    assert _tool_argument("") is None


def test_a_dify_tool_no_provider_of_the_tenant_has_stays_a_located_422() -> None:
    from shared.workflows.dify import import_dify
    from shared.workflows.errors import DslImportUnsupported

    tool = {"id": "parse", "data": {"type": "tool", "provider_type": "builtin", "provider_id": "builtin",
                                    "provider_name": "Builtin Tools", "tool_name": "json_parse",
                                    "tool_parameters": {"json_string": "{{#start.q#}}"}}}
    with pytest.raises(DslImportUnsupported) as caught:
        import_dify(dify_app(tool), model_names=set(), default_model=None, tools=lambda: TENANT_TOOLS)
    assert [(p["node_id"], p["field"], p["code"]) for p in caught.value.details["problems"]] == [
        ("parse", "data.provider_id", "unsupported_node_type")]
    assert "tool 'json_parse' of 'Builtin Tools'" in caught.value.message
    # A provider of that name without that tool is no match either.
    other = ToolSpec(ToolRef(str(uuid.uuid4()), "json_dump"), "json_dump", "", {}, "openapi", "Builtin Tools")
    with pytest.raises(DslImportUnsupported):
        import_dify(dify_app(tool), model_names=set(), default_model=None, tools=lambda: [other])
    parse = ToolSpec(ToolRef(str(uuid.uuid4()), "json_parse"), "json_parse", "", {
        "type": "object", "properties": {"json_string": {"type": "string"}}}, "openapi", "builtin tools")
    result = import_dify(dify_app(tool), model_names=set(), default_model=None, tools=lambda: [other, parse])
    assert result.document.node("parse").config["arguments"] == {
        "json_string": {"type": "template", "value": "{{#start.q#}}"}}


def test_difys_own_agent_nodes_are_refused() -> None:
    from shared.workflows.dify import import_dify
    from shared.workflows.errors import DslImportUnsupported

    agent = {"id": "agent", "data": {"type": "agent", "agent_strategy_provider_name": "langgenius/agent/agent",
                                     "agent_strategy_name": "function_calling", "agent_parameters": {}}}
    with pytest.raises(DslImportUnsupported) as caught:
        import_dify(dify_app(agent), model_names=set(), default_model=None)
    assert [(p["node_id"], p["field"]) for p in caught.value.details["problems"]] == [("agent", "data.type")]
    assert "Dify agent nodes" in caught.value.message


def test_tool_and_agent_nodes_survive_export_and_import() -> None:
    import yaml

    from shared.workflows.configs import parse_config
    from shared.workflows.dify import EXTENSION_KEY, export_dify, import_dify

    original = document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "city"}]}},
        {"id": "weather", "type": "tool", "timeout_s": 20, "error_strategy": "default_value",
         "default_value": {"text": "?"}, "config": {
             "tool": str(FORECAST), "provider_name": "weather",
             "arguments": {"city": {"type": "selector", "value": ["start", "city"]},
                           "days": {"type": "template", "value": "{{#start.city#}}"},
                           "units": {"type": "constant", "value": "metric"}},
             "outputs": [{"variable": "summary", "type": "string"}]}},
        {"id": "clock", "type": "tool", "config": {"tool": "builtin/current_time"}},
        {"id": "report", "type": "tool", "config": {
            "tool": str(WORKFLOW_TOOL.ref), "arguments": {"day": {"type": "template", "value": "{{#clock.text#}}"}}}},
        {"id": "helper", "type": "agent", "config": {"agent_id": "builtin-quick-answer",
                                                     "prompt": "Say {{#weather.summary#}}",
                                                     "inputs": {"lang": "{{#start.city#}}"}}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "a", "value_selector": ["helper", "text"]},
            {"variable": "r", "value_selector": ["report", "json"]}]}},
    ], [("start", "weather"), ("weather", "clock"), ("clock", "report"), ("report", "helper"), ("helper", "end")])
    assert validate_document(original) == []
    exported = export_dify(original, name="tools")
    data = {n["id"]: n["data"] for n in yaml.safe_load(exported)["workflow"]["graph"]["nodes"]}
    assert data["weather"]["type"] == "tool" and data["weather"]["provider_type"] == "api"
    assert (data["weather"]["provider_id"], data["weather"]["tool_name"]) == (str(PROVIDER), "forecast")
    assert data["weather"]["tool_parameters"] == {"city": {"type": "variable", "value": ["start", "city"]},
                                                  "days": {"type": "mixed", "value": "{{#start.city#}}"},
                                                  "units": {"type": "constant", "value": "metric"}}
    assert data["clock"]["provider_type"] == "builtin" and EXTENSION_KEY not in data["clock"]
    assert data["helper"]["type"] == "agent" and data["helper"]["agent_strategy_provider_name"] == "stratus"
    again = import_dify(exported, model_names=set(), default_model=None, tools=lambda: TENANT_TOOLS)
    canonical = original.model_copy(deep=True)
    for item in canonical.nodes:
        item.config = parse_config(item.type, item.config).model_dump(mode="json", by_alias=True)
    # The export lays out a document without positions; everything else comes back as it was.
    for mine, theirs in zip(again.document.nodes, canonical.nodes, strict=True):
        assert mine.model_dump(exclude={"position"}) == theirs.model_dump(exclude={"position"}), mine.id
    assert again.document.edges == canonical.edges
    assert again.warnings == []



