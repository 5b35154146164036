"""Node executors that need no external service: start and end, the template sandbox, the
variable aggregator, knowledge retrieval over a Retriever of our own contract, and the LLM
node's prompt, context and structured-output handling over a scripted model port."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.models.spec import Capability
from shared.models.types import ChatRequest, StreamEnd, TextDelta, ToolCallDelta, Usage
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes import template
from shared.workflows.engine.nodes.llm import context_text, parse_structured
from shared.workflows.engine.runner import NodeRunner
from tests.support.engine_runs import ScriptedRetriever, document, drive, passage, ports


def chain(node: dict[str, Any], outputs: dict[str, list[str]], variables: list[dict[str, Any]] | None = None):
    """start -> node -> end, the end answering ``outputs``."""
    return document([
        {"id": "start", "type": "start", "config": {"variables": variables if variables is not None else
                                                    [{"variable": "text"}]}},
        node,
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": name, "value_selector": selector} for name, selector in outputs.items()]}},
    ], [("start", node["id"]), (node["id"], "end")])


# --- start / end -------------------------------------------------------------------------------

def test_start_answers_the_inputs_and_defaults_and_end_passes_values_as_they_are() -> None:
    doc = document([
        {"id": "start", "type": "start", "config": {"variables": [
            {"variable": "name"}, {"variable": "count", "type": "number", "default": 3},
            {"variable": "tags", "type": "array[string]"}, {"variable": "note"}]}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "who", "value_selector": ["start", "name"]},
            {"variable": "n", "value_selector": ["start", "count"]},
            {"variable": "tags", "value_selector": ["start", "tags"]},
            {"variable": "first_tag", "value_selector": ["start", "tags", "0"]},
            {"variable": "note", "value_selector": ["start", "note"]},
            {"variable": "run", "value_selector": ["sys", "run_id"]}]}},
    ], [("start", "end")])
    run = drive(doc, NodeRunner(ports()), {"name": "Ana", "tags": ["a", "b"]})
    assert run.results["start"].outputs == {"name": "Ana", "count": 3, "tags": ["a", "b"], "note": None}
    assert run.outputs == {"who": "Ana", "n": 3, "tags": ["a", "b"], "first_tag": "a", "note": None,
                           "run": run.results["end"].outputs["run"]}
    assert run.outputs["run"].startswith("run-")


# --- template ----------------------------------------------------------------------------------

def template_run(source: str, variables: dict[str, list[str]] | None = None, inputs: dict[str, Any] | None = None):
    node = {"id": "tpl", "type": "template", "config": {"template": source, "variables": [
        {"variable": name, "value_selector": selector} for name, selector in (variables or {}).items()]}}
    start_vars = [{"variable": name, "type": "array[string]" if isinstance(value, list) else "string"}
                  for name, value in (inputs or {}).items()]
    return drive(chain(node, {"out": ["tpl", "output"]}, start_vars), NodeRunner(ports()), inputs or {})


def test_template_renders_its_variables_with_jinja() -> None:
    run = template_run("Hello {{ name }}!{% for t in tags %} #{{ t | upper }}{% endfor %} {{ missing }}.",
                       {"name": ["start", "name"], "tags": ["start", "tags"]}, {"name": "Ana", "tags": ["x", "y"]})
    assert run.outputs == {"out": "Hello Ana! #X #Y ."}
    assert run.results["tpl"].inputs == {"name": "Ana", "tags": ["x", "y"]}
    # Jinja2's defaults, as Dify renders: a final newline dropped, None printed as None.
    assert template.render("{{ a }}\n", {"a": None}) == "None"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ name.__len__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ '{0.__class__}'.format(name) }}",
    "{{ tags.append('x') }}",
])
def test_template_refuses_internals_and_mutation(source: str) -> None:
    run = template_run(source, {"name": ["start", "name"], "tags": ["start", "tags"]},
                       {"name": "Ana", "tags": ["x"]})
    error = run.results["tpl"].error
    assert run.status == "failed" and error is not None
    assert error.code == "template_forbidden", error


def test_template_output_is_capped_while_rendering() -> None:
    run = template_run("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}")
    error = run.results["tpl"].error
    assert error is not None and error.code == "template_output_too_large"
    assert str(template.MAX_OUTPUT_CHARS) in error.message
    assert template.render("{{ 'y' * 10 }}", {}, max_chars=10) == "y" * 10
    with pytest.raises(NodeFailure, match="more than 9"):
        template.render("{{ 'y' * 10 }}", {}, max_chars=9)


@pytest.mark.parametrize("source", [
    "{{ (2 ** 1000000000) > 1 }}",
    "{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x > 1 }}",
    "{% set s = 'x' * 1000000 %}{% set s = s ~ s %}{% set s = s ~ s %}{% set s = s ~ s %}"
    "{% set s = s ~ s %}{{ s|length }}",
    "{% set s = 'x' * 1000000 %}{% set s = s + s %}{% set s = s + s %}{% set s = s + s %}"
    "{% set s = s + s %}{{ s|length }}",
    "{{ ('x' * 1000000000)|length }}",
    "{{ ('%2000000000d' % 1)|length }}",
    "{{ ('%*d' % (2000000000, 1))|length }}",
    "{{ ('{:>2000000000}'.format(1))|length }}",
    "{{ ('{:>{w}}'.format(1, w=2000000000))|length }}",
    "{{ 'a'.ljust(2000000000)|length }}",
    "{{ ('a'|center(2000000000))|length }}",
    "{{ (('x' * 1000)|replace('', 'y' * 100000))|length }}",
    "{{ ('x' * 100000).join(range(1000))|length }}",
    "{{ (range(1000)|join('x' * 100000))|length }}",
    "{{ ([1]|batch(2000000000, 'x')|list)|length }}",
    "{{ lipsum(10000000)|length }}",
])
def test_template_cannot_build_values_that_exhaust_the_process(source: str) -> None:
    # Rendering runs in the platform process: each of these would take it gigabytes or minutes.
    with pytest.raises(NodeFailure) as info:
        template.render(source, {})
    assert info.value.code == "template_too_large", info.value


def test_template_stops_once_its_node_is_given_up() -> None:
    cancelled = threading.Event()
    threading.Timer(0.2, cancelled.set).start()
    with pytest.raises(NodeFailure) as info:
        template.render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", {},
                        cancelled=cancelled)
    assert info.value.code == "node_timeout"


def test_template_size_checks_leave_ordinary_templates_alone() -> None:
    source = ("{{ 'a'.ljust(5) }}|{{ 'x'|replace('x', 'yy') }}|{{ [1, 2]|join(',') }}|{{ '{}-{:>3}'.format(1, 2) }}|"
              "{{ 2 ** 10 }}|{{ 'a' ~ 1 }}|{{ [1] * 3 }}|{{ 7 % 3 }}|{{ '%s-%03d'|format('a', 3) }}|"
              "{{ 'b'|center(3) }}|{{ [1, 2, 3]|batch(2)|list }}|{{ body|length }}")
    assert template.render(source, {"body": "z" * 5_000_000}) == (
        "a    |yy|1,2|1-  2|1024|a1|[1, 1, 1]|1|a-003| b |[[1, 2], [3]]|5000000")


@pytest.mark.parametrize(("source", "code"), [("{% for x in %}", "template_syntax_error"),
                                              ("{{ 1 / 0 }}", "template_render_failed"),
                                              ("{{ name | nosuchfilter }}", "template_syntax_error")])
def test_template_errors_are_the_templates(source: str, code: str) -> None:
    run = template_run(source, {"name": ["start", "name"]}, {"name": "Ana"})
    error = run.results["tpl"].error
    assert error is not None and error.code == code


# --- variable aggregator -----------------------------------------------------------------------

def test_the_aggregator_answers_the_first_variable_with_a_value() -> None:
    doc = document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "a"}, {"variable": "b"},
                                                                  {"variable": "c"}]}},
        {"id": "agg", "type": "variable_aggregator", "config": {"variables": [["start", "a"], ["start", "b"],
                                                                              ["start", "c"]]}},
        {"id": "groups", "type": "variable_aggregator", "config": {"groups": [
            {"group_name": "first", "variables": [["start", "a"], ["start", "c"]]},
            {"group_name": "none", "variables": [["start", "a"]]}]}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "one", "value_selector": ["agg", "output"]},
            {"variable": "first", "value_selector": ["groups", "first", "output"]},
            {"variable": "none", "value_selector": ["groups", "none", "output"]}]}},
    ], [("start", "agg"), ("agg", "groups"), ("groups", "end")])
    run = drive(doc, NodeRunner(ports()), {"b": "", "c": "third"})
    # "" is a value (only None is not), so b wins over c.
    assert run.outputs == {"one": "", "first": "third", "none": None}
    assert run.results["groups"].outputs == {"first": {"output": "third"}, "none": {"output": None}}


# --- knowledge retrieval ------------------------------------------------------------------------

KB = "0b6f1c8e-5a57-4c1e-9a43-2b8f3f9e1a11"


def retrieval(config: dict[str, Any], retriever: ScriptedRetriever, query: Any = "how do refunds work?"):
    node = {"id": "kr", "type": "knowledge_retrieval",
            "config": {"query_variable_selector": ["start", "text"], "knowledge_base_ids": [KB], **config}}
    return drive(chain(node, {"result": ["kr", "result"]}), NodeRunner(ports(retriever=retriever)), {"text": query})


def test_retrieval_results_are_shaped_as_difys_and_the_settings_reach_the_query() -> None:
    found = passage("Refunds take 5 days.", score=0.83, name="policy.pdf")
    retriever = ScriptedRetriever([found])
    run = retrieval({"retrieval": {"mode": "semantic", "top_k": 7, "score_threshold": 0.4, "rerank": True}}, retriever)
    assert run.outputs["result"] == [{
        "content": "Refunds take 5 days.", "title": "policy.pdf", "score": 0.83, "score_type": "cosine",
        "metadata": {"document_id": str(found.document_id), "knowledge_base_id": str(found.knowledge_base_id),
                     "segment_id": str(found.segment_id)}}]
    [query] = retriever.queries
    assert query.knowledge_base_ids == [uuid.UUID(KB)] and query.text == "how do refunds work?"
    assert (query.mode, query.top_k, query.score_threshold) == ("semantic", 7, 0.4)
    assert query.rerank is not None and query.skip_unavailable


@pytest.mark.parametrize(("config", "query", "code"), [
    ({}, "   ", "knowledge_retrieval_query_empty"),
    ({"knowledge_base_ids": ["not-a-uuid"]}, "q", "knowledge_retrieval_invalid_id"),
])
def test_retrieval_refuses_what_it_cannot_search(config: dict[str, Any], query: str, code: str) -> None:
    retriever = ScriptedRetriever([])
    run = retrieval(config, retriever, query)
    assert run.results["kr"].error is not None and run.results["kr"].error.code == code
    assert retriever.queries == []


# --- llm (prompt, context, structured output) over a scripted model port -----------------------

class ScriptedModels:
    """The model port (what the LLM node calls on the gateway), answering scripted events."""

    def __init__(self, *answers: list[Any], native_structured_output: bool = True) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[ChatRequest, str | None]] = []
        self.native = native_structured_output
        self.closed = threading.Event()

    def target(self, tenant_id: uuid.UUID, name: str | None, capability: Capability) -> Any:
        caps = {Capability.CHAT, *([Capability.STRUCTURED_OUTPUT] if self.native else [])}
        return type("Target", (), {"spec": type("Spec", (), {"has": staticmethod(caps.__contains__)})()})()

    def stream_chat(self, tenant_id: uuid.UUID, request: ChatRequest, model: str | None = None,
                    fallback_model: str | None = None) -> tuple[Iterator[Any], Any, str]:
        self.requests.append((request, model))
        events = self.answers.pop(0)

        def stream() -> Iterator[Any]:
            try:
                yield from events
            finally:
                self.closed.set()
        return stream(), None, model or "default-model"


USAGE = Usage(11, 4)


def answer(*pieces: str) -> list[Any]:
    return [*(TextDelta(piece) for piece in pieces), StreamEnd("stop", USAGE)]


def llm_doc(config: dict[str, Any], extra_outputs: dict[str, list[str]] | None = None):
    node = {"id": "llm", "type": "llm", "config": {
        "prompt_template": [{"role": "system", "text": "You answer about {{#start.topic#}}."},
                            {"role": "user", "text": "{{#start.text#}}"}], **config}}
    return chain(node, {"text": ["llm", "text"], **(extra_outputs or {})},
                 [{"variable": "text"}, {"variable": "topic"}, {"variable": "docs", "type": "array[object]"}])


def test_llm_renders_the_prompt_streams_chunks_and_reports_usage() -> None:
    models = ScriptedModels(answer("Paris", " is", " the capital."))
    run = drive(llm_doc({"model": {"name": "house-model", "temperature": 0.2, "max_tokens": 50, "stop": ["END"]}},
                        {"usage": ["llm", "usage"], "why": ["llm", "finish_reason"]}),
                NodeRunner(ports(models=models)), {"text": "Capital of France?", "topic": "geography"})
    assert run.outputs == {"text": "Paris is the capital.", "why": "stop",
                           "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}}
    assert run.chunks("llm") == ["Paris", " is", " the capital."]
    [(request, model)] = models.requests
    assert model == "house-model"
    assert [(m.role, m.content) for m in request.messages] == [("system", "You answer about geography."),
                                                               ("user", "Capital of France?")]
    assert (request.temperature, request.max_tokens, request.stop, request.response_schema) == (0.2, 50, ["END"],
                                                                                                None)
    result = run.results["llm"]
    assert result.tokens == 15
    assert result.inputs == {"model": "house-model", "messages": [
        {"role": "system", "text": "You answer about geography."}, {"role": "user", "text": "Capital of France?"}]}
    assert models.closed.is_set()


def test_llm_leaves_out_empty_messages_and_fails_when_none_is_left() -> None:
    models = ScriptedModels(answer("ok"))
    run = drive(llm_doc({}), NodeRunner(ports(models=models)), {"text": "hi", "topic": ""})
    assert [m.role for m in models.requests[0][0].messages] == ["system", "user"]
    empty = drive(document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "text"}]}},
        {"id": "llm", "type": "llm", "config": {"prompt_template": [{"role": "system", "text": ""},
                                                                   {"role": "user", "text": "{{#start.text#}}"}]}},
    ], [("start", "llm")]), NodeRunner(ports(models=ScriptedModels())), {"text": ""})
    assert run.status == "succeeded"
    assert empty.results["llm"].error is not None and empty.results["llm"].error.code == "llm_prompt_empty"


def test_llm_context_joins_retrieval_results_as_dify_does() -> None:
    docs = [{"content": "Refunds take 5 days.", "title": "a"}, "Plain text item", {"content": "Call us {{#start.x#}}."}]
    assert context_text(docs) == "Refunds take 5 days.\nPlain text item\nCall us {{#start.x#}}."
    assert context_text("  just text ") == "  just text "
    assert context_text(None) == ""
    models = ScriptedModels(answer("5 days"))
    run = drive(llm_doc({"context": {"enabled": True, "variable_selector": ["start", "docs"]},
                         "prompt_template": [{"role": "system", "text": "Use:\n{{#context#}}"},
                                             {"role": "user", "text": "{{#start.text#}}"}]}),
                NodeRunner(ports(models=models)), {"text": "How long?", "topic": "t", "docs": docs})
    system = models.requests[0][0].messages[0].content
    # The context's own text is not rendered again.
    assert system == "Use:\nRefunds take 5 days.\nPlain text item\nCall us {{#start.x#}}."
    assert run.results["llm"].inputs["context"].startswith("Refunds")
    bad = drive(llm_doc({"context": {"enabled": True, "variable_selector": ["start", "docs"]}}),
                NodeRunner(ports(models=ScriptedModels())), {"text": "q", "topic": "t", "docs": [{"title": "x"}]})
    assert bad.results["llm"].error is not None and bad.results["llm"].error.code == "llm_invalid_context"


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
          "required": ["city", "population"], "additionalProperties": False}


def test_structured_output_uses_the_native_mode_and_parses_the_answer() -> None:
    models = ScriptedModels(answer('{"city": "Paris", ', '"population": 2100000}'))
    run = drive(llm_doc({"structured_output": {"enabled": True, "schema": SCHEMA}},
                        {"data": ["llm", "structured_output"], "city": ["llm", "structured_output", "city"]}),
                NodeRunner(ports(models=models)), {"text": "Capital of France?", "topic": "t"})
    assert run.outputs["data"] == {"city": "Paris", "population": 2100000}
    assert run.outputs["city"] == "Paris"
    assert models.requests[0][0].response_schema == SCHEMA


def test_structured_output_without_a_native_mode_is_asked_for_in_the_system_prompt() -> None:
    models = ScriptedModels(answer('```json\n{"city": "Rome", "population": 2800000}\n```'),
                            native_structured_output=False)
    run = drive(llm_doc({"structured_output": {"enabled": True, "schema": SCHEMA}},
                        {"data": ["llm", "structured_output"]}),
                NodeRunner(ports(models=models)), {"text": "Capital of Italy?", "topic": "t"})
    request = models.requests[0][0]
    assert request.response_schema is None
    assert request.messages[0].role == "system" and '"population"' in request.messages[0].content
    assert request.messages[0].content.startswith("You answer about t.")
    assert run.outputs["data"] == {"city": "Rome", "population": 2800000}


def test_a_structured_answer_given_as_a_tool_call_is_read_too() -> None:
    events = [ToolCallDelta(0, "t1", "response", '{"city": "Oslo",'), ToolCallDelta(0, arguments=' "population": 7}'),
              StreamEnd("stop", Usage(3, 2))]
    run = drive(llm_doc({"structured_output": {"enabled": True, "schema": SCHEMA}},
                        {"data": ["llm", "structured_output"]}),
                NodeRunner(ports(models=ScriptedModels(events))), {"text": "q", "topic": "t"})
    assert run.outputs["data"] == {"city": "Oslo", "population": 7}


@pytest.mark.parametrize(("text", "problem"), [
    ("Paris, about two million", "not JSON"),
    ("[1, 2]", "JSON list"),
    ('{"city": "Paris"}', "missing required property 'population'"),
    ('{"city": "Paris", "population": "many"}', "$.population: expected integer"),
    ('{"city": "Paris", "population": 1, "mayor": "x"}', "unexpected property 'mayor'"),
])
def test_an_answer_that_does_not_fit_the_schema_fails_clearly(text: str, problem: str) -> None:
    with pytest.raises(NodeFailure) as raised:
        parse_structured(text, SCHEMA)
    assert raised.value.code == "llm_structured_output_invalid"
    assert problem in str(raised.value)
    run = drive(llm_doc({"structured_output": {"enabled": True, "schema": SCHEMA}}),
                NodeRunner(ports(models=ScriptedModels(answer(text)))), {"text": "q", "topic": "t"})
    assert run.results["llm"].error is not None and run.results["llm"].error.code == "llm_structured_output_invalid"
    assert run.results["llm"].tokens == 15  # spent all the same


def test_a_model_stream_stops_at_the_timeout_and_later_chunks_are_dropped() -> None:
    release = threading.Event()

    def slow() -> Iterator[Any]:
        yield TextDelta("first")
        release.wait(5)
        yield TextDelta("late")
        yield StreamEnd("stop", Usage(1, 1))

    models = ScriptedModels()
    models.answers = [slow()]  # type: ignore[list-item]
    doc = llm_doc({})
    doc.nodes[1].timeout_s = 1
    run = drive(doc, NodeRunner(ports(models=models)), {"text": "q", "topic": "t"})
    release.set()
    assert models.closed.wait(5)
    assert run.results["llm"].error is not None and run.results["llm"].error.code == "node_timeout"
    assert run.chunks("llm") == ["first"]
