"""Chatflows in the document and the engine: validation (answer nodes, sys.query and friends,
conversation variables), the answer stream's order and timing (fed by hand, event by event), the
assigner on conversation variables, answers inside containers, and the Dify round trip."""

from __future__ import annotations

from typing import Any

from shared.workflows.definition import WorkflowDocument
from shared.workflows.dify import export_dify, import_dify
from shared.workflows.engine.answers import AnswerStream
from shared.workflows.engine.graph import NodeOutcome
from shared.workflows.engine.nodes.answer import answer_text
from shared.workflows.engine.runner import ChatContext, NodeRunner, run_pool
from shared.workflows.validation import validate_document
from tests.support.engine_runs import context_for, drive, ports


def chatflow(nodes: list[dict[str, Any]], edges: list[tuple[str, ...]],
             variables: list[dict[str, Any]] | None = None) -> WorkflowDocument:
    return WorkflowDocument.model_validate({
        "mode": "chatflow", "conversation_variables": variables or [], "nodes": [{"id": "start", "type": "start"},
                                                                                  *nodes],
        "edges": [{"source": e[0], "target": e[-1], **({"source_handle": e[1]} if len(e) == 3 else {})}
                  for e in edges]})


def answer(node_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "answer", "config": {"answer": text}, **extra}


def llm(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "type": "llm", "config": {"prompt_template": [{"role": "user", "text": "{{#sys.query#}}"}]}}


def codes(document: WorkflowDocument) -> list[tuple[str | None, str, str]]:
    return [(p.node_id, p.field, p.code) for p in validate_document(document)]


# -- validation ---------------------------------------------------------------------------------
def test_a_chatflow_answers_with_answer_nodes_and_reads_its_chat() -> None:
    document = chatflow([answer("a", "{{#sys.query#}} #{{#sys.dialogue_count#}} {{#conversation.topic#}}")],
                        [("start", "a")], [{"name": "topic", "type": "string", "default": "none"}])
    assert codes(document) == []
    workflow = document.model_copy(update={"mode": "workflow"})
    found = codes(workflow)
    assert (None, "conversation_variables", "conversation_variables_in_workflow") in found
    assert ("a", "type", "answer_in_workflow") in found and (None, "nodes", "missing_end") in found
    assert ("a", "config.answer", "unknown_sys_variable") in found


def test_chatflow_rules_are_located() -> None:
    document = chatflow([
        {"id": "end", "type": "end", "config": {"outputs": []}},
        answer("a", "{{#conversation.nope#}}", error_strategy="default_value"),
        {"id": "set", "type": "assigner", "config": {"items": [
            {"variable_selector": ["conversation", "count"], "operation": "append", "input_type": "constant",
             "value": 1},
            {"variable_selector": ["conversation", "ghost"], "operation": "over-write", "input_type": "constant",
             "value": "x"}]}},
    ], [("start", "set"), ("set", "a"), ("a", "end")],
        [{"name": "count", "type": "number", "default": "zero"}, {"name": "count", "type": "number"}])
    found = codes(document)
    assert ("end", "type", "end_in_chatflow") in found
    assert ("a", "config.answer", "unknown_conversation_variable") in found
    assert ("a", "error_strategy", "unsupported_error_strategy") in found
    assert ("set", "config.items[0]", "invalid_assignment") in found  # append on a number
    assert ("set", "config.items[1].variable_selector", "unknown_conversation_variable") in found
    assert (None, "conversation_variables[0].default", "invalid_default") in found
    assert (None, "conversation_variables[1].name", "duplicate_variable") in found
    assert codes(chatflow([], [])) == [(None, "nodes", "missing_answer")]


# -- the answer stream ----------------------------------------------------------------------------
class Stream:
    def __init__(self, document: WorkflowDocument, query: str = "hi") -> None:
        context = context_for({}, chat=ChatContext(query=query, conversation_id="c-1"))
        self.pool = run_pool(context, document)
        self.written: list[str] = []
        self.stream = AnswerStream(document, self.pool, self.written.append)

    def chunk(self, node_id: str, text: str) -> None:
        self.stream.event("text_chunk", {"node_id": node_id, "text": text})

    def done(self, node_id: str, outputs: dict[str, Any] | None = None, handle: str = "source") -> None:
        if outputs is not None:
            self.pool.add(node_id, outputs)
            self.stream.settled(node_id, NodeOutcome("succeeded", handle))
        else:
            self.stream.settled(node_id, NodeOutcome("skipped"))


def test_literal_text_and_sys_stream_at_once_then_the_model_piece_by_piece() -> None:
    document = chatflow([llm("m"), answer("a", "Q: {{#sys.query#}} A: {{#m.text#}}!")],
                        [("start", "m"), ("m", "a")])
    s = Stream(document)
    s.stream.started()
    assert s.written == ["Q: hi A: "]  # what one event made known is one piece
    s.chunk("m", "Hel")
    s.chunk("m", "lo")
    assert s.written[-2:] == ["Hel", "lo"]
    s.done("start", {})
    s.done("m", {"text": "Hello", "usage": {}, "finish_reason": "stop"})
    assert "".join(s.written) == "Q: hi A: Hello!" and s.stream.done


def test_answers_stream_in_graph_order_and_wait_for_their_branch() -> None:
    """The if/else decides whether the first answer runs; the second answer's model streams
    meanwhile into a buffer, written once the first is done."""
    document = chatflow([
        {"id": "branch", "type": "if_else", "config": {"cases": [{"case_id": "yes", "conditions": [
            {"variable_selector": ["sys", "query"], "comparison_operator": "contains", "value": "hello"}]}]}},
        llm("m"), answer("first", "greeted; "), answer("second", "{{#m.text#}}")],
        [("start", "branch"), ("start", "m"), ("branch", "yes", "first"), ("branch", "false", "second"),
         ("m", "second")])
    s = Stream(document)
    s.stream.started()
    s.done("start", {})
    s.chunk("m", "model ")
    assert s.written == []  # "first" may still run: nothing after it streams before it
    s.done("branch", {"result": True, "selected_case_id": "yes"}, handle="yes")
    assert s.written == ["greeted; model "]
    s.chunk("m", "text")
    s.done("m", {"text": "model text"})
    assert "".join(s.written) == "greeted; model text"
    # Not taken: the first answer gives its turn away.
    s = Stream(document)
    s.stream.started()
    s.done("start", {})
    s.chunk("m", "model ")
    s.done("branch", {"result": False, "selected_case_id": None}, handle="false")
    s.done("first")
    assert s.written == ["model "]


def test_a_conversation_variable_waits_for_its_assigner_upstream() -> None:
    document = chatflow([
        {"id": "set", "type": "assigner", "config": {"items": [
            {"variable_selector": ["conversation", "name"], "input_type": "variable", "value": ["sys", "query"]}]}},
        answer("a", "name: {{#conversation.name#}}")],
        [("start", "set"), ("set", "a")], [{"name": "name", "type": "string", "default": "nobody"}])
    s = Stream(document, query="Ada")
    s.stream.started()
    assert s.written == ["name: "]  # not the stale default
    s.pool.assign(["conversation", "name"], "Ada")
    s.done("start", {})
    s.done("set", {})
    assert "".join(s.written) == "name: Ada"


def test_values_render_as_dify_answers_show_them() -> None:
    assert answer_text({"type": "greeting"}) == '{\n  "type": "greeting"\n}'
    assert answer_text(["a", 2]) == "- a\n- 2"
    assert answer_text(None) == "" and answer_text(3.5) == "3.5" and answer_text(True) == "true"


# -- running ---------------------------------------------------------------------------------------
def test_assigners_change_conversation_variables_even_inside_a_loop() -> None:
    document = chatflow([
        {"id": "lp", "type": "loop", "config": {"start_node_id": "lp_start", "loop_count": 3,
                                                "loop_variables": [], "break_conditions": []}},
        {"id": "lp_start", "type": "loop_start", "parent_id": "lp"},
        {"id": "add", "type": "assigner", "parent_id": "lp", "config": {"items": [
            {"variable_selector": ["conversation", "count"], "operation": "+=", "input_type": "constant",
             "value": 2}]}},
        answer("say", "{{#conversation.count#}};", parent_id="lp"),
        answer("end", " total {{#conversation.count#}}")],
        [("start", "lp"), ("lp_start", "add"), ("add", "say"), ("lp", "end")],
        [{"name": "count", "type": "number", "default": 1}])
    assert codes(document) == []
    run = drive(document, NodeRunner(ports()), conversation={"count": 10})
    assert run.status == "succeeded", run.results
    assert "".join(run.streamed) == "12;14;16; total 16" == run.outputs["answer"]
    assert run.results["lp"].assigned == {"count": 16} and run.results["lp"].answer == "12;14;16;"
    assert run.conversation == {"count": 16}


def test_a_chatflow_round_trips_through_dify() -> None:
    document = chatflow([answer("a", "{{#conversation.n#}}")], [("start", "a")],
                        [{"name": "n", "type": "array[number]", "default": [1, 2], "description": "numbers"}])
    content = export_dify(document, name="cf")
    assert "mode: advanced-chat" in content
    back = import_dify(content, model_names=set(), default_model=None).document
    assert back.mode == "chatflow" and back.conversation_variables == document.conversation_variables
    assert [(n.id, n.type, n.config.get("answer")) for n in back.nodes] == [("start", "start", None),
                                                                            ("a", "answer", "{{#conversation.n#}}")]
    # And what an import gives exports and imports back equal.
    assert import_dify(export_dify(back, name="cf"), model_names=set(), default_model=None).document == back
