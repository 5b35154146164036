"""Human input forms (the answer's check, the timeout's defaults, the configuration's rules) and
sub-workflows (the publish check of calls: cycles, depth, targets; the node run inline through
the engine over an in-memory store of published versions) — docs/adr/0036."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.errors import StratusError
from shared.workflows.configs import HumanInputConfig, outputs_of
from shared.workflows.contract import RunnableWorkflow
from shared.workflows.definition import Node, WorkflowDocument
from shared.workflows.engine.runner import NodeRunner
from shared.workflows.errors import WorkflowAnswerInvalid, WorkflowNotFound, WorkflowNotPublished
from shared.workflows.human_input import check_answer, default_answer
from shared.workflows.sub_workflows import Resolved, check_sub_workflows
from shared.workflows.validation import validate_document
from tests.support.engine_runs import context_for, document, drive, ports

FORM = {"fields": [
    {"name": "verdict", "type": "select", "options": ["ship", "hold"], "required": True, "default": "hold"},
    {"name": "score", "type": "number", "required": True},
    {"name": "notes", "type": "paragraph", "max_length": 5},
    {"name": "urgent", "type": "boolean"}]}


def form(**config: Any) -> HumanInputConfig:
    return HumanInputConfig.model_validate({**FORM, **config})


def fields_of(exc: pytest.ExceptionInfo[WorkflowAnswerInvalid]) -> dict[str, str]:
    return {item["field"]: item["type"] for item in exc.value.details["fields"]}


# -- the answer ---------------------------------------------------------------------------------
def test_an_answer_takes_defaults_converts_number_text_and_leaves_by_source() -> None:
    outputs, handle = check_answer(form(), {"score": "2.5", "urgent": True}, None)
    assert outputs == {"verdict": "hold", "score": 2.5, "notes": None, "urgent": True}
    assert handle == "source"
    assert check_answer(form(), {"score": "7"}, None)[0]["score"] == 7


def test_a_wrong_answer_names_every_field() -> None:
    with pytest.raises(WorkflowAnswerInvalid) as exc:
        check_answer(form(), {"verdict": "maybe", "notes": "too long", "urgent": "yes", "other": 1}, None)
    assert fields_of(exc) == {"answer.verdict": "not_an_option", "answer.score": "missing", "answer.notes": "too_long",
                              "answer.urgent": "type_error", "answer.other": "unknown_field"}
    assert exc.value.status == 422 and exc.value.code == "workflow_answer_invalid"
    with pytest.raises(WorkflowAnswerInvalid) as exc:
        check_answer(form(), {"score": True}, None)
    assert fields_of(exc) == {"answer.score": "type_error"}


def test_actions_pick_the_handle_and_must_be_named() -> None:
    config = form(actions=[{"id": "approve", "title": "Approve"}, {"id": "reject"}])
    outputs, handle = check_answer(config, {"score": 1}, "reject")
    assert handle == "reject" and outputs["action_id"] == "reject"
    with pytest.raises(WorkflowAnswerInvalid) as exc:
        check_answer(config, {"score": 1}, None)
    assert fields_of(exc) == {"action": "missing"}
    with pytest.raises(WorkflowAnswerInvalid) as exc:
        check_answer(config, {"score": 1}, "later")
    assert fields_of(exc) == {"action": "not_an_option"}
    with pytest.raises(WorkflowAnswerInvalid) as exc:
        check_answer(form(), {"score": 1}, "approve")
    assert fields_of(exc) == {"action": "unknown_field"}


def test_a_timeout_answers_the_defaults_and_the_first_action() -> None:
    assert default_answer(form()) == ({"verdict": "hold", "score": None, "notes": None, "urgent": None}, "source")
    outputs, handle = default_answer(form(actions=[{"id": "approve"}, {"id": "reject"}]))
    assert handle == "approve" and outputs["action_id"] == "approve"


# -- the configuration --------------------------------------------------------------------------
def graph(*middle: dict[str, Any], edges: list[tuple[str, ...]] | None = None) -> dict[str, Any]:
    nodes = [{"id": "start", "type": "start", "config": {"variables": [{"variable": "q", "type": "string"}]}},
             *middle, {"id": "end", "type": "end", "config": {"outputs": []}}]
    chain = edges or [("start", middle[0]["id"]), (middle[-1]["id"], "end")]
    return document(nodes, chain).model_dump(mode="json")


def problems(raw: dict[str, Any]) -> set[tuple[str | None, str, str]]:
    return {(p.node_id, p.field, p.code) for p in validate_document(raw)}


def test_form_rules_are_located() -> None:
    ask = {"id": "ask", "type": "human_input", "config": {
        "form_content": "About {{#start.q#}} and {{#nowhere.x#}}", "timeout_s": 60, "on_timeout": "default",
        "fields": [{"name": "pick", "type": "select"}, {"name": "n", "type": "number", "options": ["1"]},
                   {"name": "flag", "type": "boolean", "default": "yes"},
                   {"name": "must", "type": "text", "required": True}]}}
    assert problems(graph(ask)) == {
        ("ask", "config.fields[0].options", "invalid_options"), ("ask", "config.fields[1].options", "invalid_options"),
        ("ask", "config.fields[2].default", "invalid_default"), ("ask", "config.fields[3].default", "missing_default"),
        ("ask", "config.form_content", "unknown_node_reference")}
    reserved = {"id": "ask", "type": "human_input", "config": {"fields": [{"name": "action_id"}]}}
    assert ("ask", "config", "invalid_config") in problems(graph(reserved))


def test_actions_are_the_exits_and_outputs_follow_the_fields() -> None:
    ask = {"id": "ask", "type": "human_input", "config": {**FORM, "actions": [{"id": "yes"}, {"id": "no"}]}}
    ok = graph(ask, edges=[("start", "ask"), ("ask", "yes", "end"), ("ask", "no", "end")])
    assert problems(ok) == set()
    wrong = graph(ask, edges=[("start", "ask"), ("ask", "end")])
    assert (None, "edges[1].source_handle", "invalid_source_handle") in problems(wrong)
    node = Node.model_validate(ask)
    assert outputs_of(node) == {"verdict": "string", "score": "number", "notes": "string", "urgent": "boolean",
                                "action_id": "string"}


def test_human_input_stays_at_the_top_level() -> None:
    raw = graph(
        {"id": "each", "type": "iteration", "config": {"start_node_id": "s", "iterator_selector": ["sys", "run_id"],
                                                      "output_selector": ["ask", "x"]}},
        {"id": "s", "type": "iteration_start", "parent_id": "each"},
        {"id": "ask", "type": "human_input", "parent_id": "each", "config": {"fields": [{"name": "x"}]}},
        edges=[("start", "each"), ("each", "end"), ("s", "ask")])
    assert ("ask", "parent_id", "not_allowed_in_container") in problems(raw)


# -- sub-workflows: the publish check -----------------------------------------------------------
def end_of(selector: list[str]) -> dict[str, Any]:
    return {"id": "end", "type": "end", "config": {"outputs": [{"variable": "loud", "value_selector": selector}]}}


def caller(target: str, *, version: int | None = None, inputs: tuple[str, ...] = ("word",),
           outputs: tuple[str, ...] = ("loud",)) -> WorkflowDocument:
    return document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "word", "type": "string"}]}},
        {"id": "call", "type": "sub_workflow", "config": {
            "workflow_id": target, **({"version": version} if version else {}),
            "inputs": [{"variable": name, "value_selector": ["start", "word"]} for name in inputs],
            "outputs": [{"variable": name} for name in outputs]}},
        end_of(["call", "loud"])],
        [("start", "call"), ("call", "end")])


def shouter(*extra: dict[str, Any]) -> WorkflowDocument:
    return document([
        {"id": "start", "type": "start", "config": {"variables": [
            {"variable": "word", "type": "string", "required": True}]}},
        {"id": "shout", "type": "template", "config": {"template": "{{ w | upper }}", "variables": [
            {"variable": "w", "value_selector": ["start", "word"]}]}},
        *extra,
        end_of(["shout", "output"])],
        [("start", "shout"), ("shout", "end")])


class Published:
    """Published versions of our own in memory: workflow id → {number: document}."""

    def __init__(self) -> None:
        self.versions: dict[uuid.UUID, dict[int, WorkflowDocument]] = {}

    def publish(self, document_: WorkflowDocument, workflow_id: uuid.UUID | None = None) -> uuid.UUID:
        workflow_id = workflow_id or uuid.uuid4()
        numbers = self.versions.setdefault(workflow_id, {})
        numbers[len(numbers) + 1] = document_
        return workflow_id

    def load(self, target: uuid.UUID, version: int | None) -> Resolved:
        numbers = self.versions.get(target)
        if numbers is None:
            return "sub_workflow_not_found", "no such workflow"
        if not numbers:
            return "sub_workflow_not_published", "not published"
        number = version or max(numbers)
        if number not in numbers:
            return "sub_workflow_version_not_found", "no such version"
        return target, number, numbers[number]

    # The engine's WorkflowResolver port.
    def workflow_id(self, tenant_id: uuid.UUID, workflow_id: uuid.UUID) -> uuid.UUID:
        return workflow_id

    def resolve_for_run(self, tenant_id: uuid.UUID, workflow_id: uuid.UUID,
                        version: int | str | None = None) -> RunnableWorkflow:
        found = self.load(workflow_id, version if isinstance(version, int) else None)
        if len(found) == 2:
            raise (WorkflowNotPublished() if found[0] == "sub_workflow_not_published" else WorkflowNotFound())
        target, number, document_ = found  # type: ignore[misc]
        return RunnableWorkflow(target, "w", number, document_)


def codes(found: list[Any]) -> list[tuple[str | None, str, str]]:
    return [(p.node_id, p.field, p.code) for p in found]


def test_a_call_must_fit_a_published_version() -> None:
    store = Published()
    child = store.publish(shouter())
    assert check_sub_workflows(store.load, uuid.uuid4(), caller(str(child))) == []
    assert codes(check_sub_workflows(store.load, None, caller(str(uuid.uuid4())))) == [
        ("call", "config.workflow_id", "sub_workflow_not_found")]
    store.versions[draft := uuid.uuid4()] = {}
    assert codes(check_sub_workflows(store.load, None, caller(str(draft)))) == [
        ("call", "config.workflow_id", "sub_workflow_not_published")]
    assert codes(check_sub_workflows(store.load, None, caller(str(child), version=9))) == [
        ("call", "config.version", "sub_workflow_version_not_found")]
    assert codes(check_sub_workflows(store.load, None, caller(str(child), inputs=("other",), outputs=("quiet",)))) == [
        ("call", "config.inputs[0].variable", "unknown_input"), ("call", "config.inputs", "missing_input"),
        ("call", "config.outputs[0].variable", "unknown_output")]
    pausing = store.publish(shouter({"id": "ask", "type": "human_input", "config": {}}))
    assert codes(check_sub_workflows(store.load, None, caller(str(pausing)))) == [
        ("call", "config.workflow_id", "sub_workflow_pauses")]


def test_a_cycle_back_to_the_workflow_or_through_others_is_refused() -> None:
    store = Published()
    a, b = uuid.uuid4(), uuid.uuid4()
    store.publish(caller(str(a)), b)  # B calls A
    found = check_sub_workflows(store.load, a, caller(str(b)))  # publishing A calling B
    assert codes(found) == [("call", "config.workflow_id", "sub_workflow_cycle")]
    assert f"{a} → {b} → {a}" in found[0].message
    # Calling itself directly.
    assert codes(check_sub_workflows(store.load, a, caller(str(a)))) == [
        ("call", "config.workflow_id", "sub_workflow_cycle")]


def test_nesting_is_bounded() -> None:
    store = Published()
    chain = [store.publish(shouter())]
    for _ in range(5):
        chain.append(store.publish(caller(str(chain[-1]))))
    # Calling chain[4] nests five calls deep (the most); chain[5], six.
    assert check_sub_workflows(store.load, uuid.uuid4(), caller(str(chain[4]))) == []
    assert codes(check_sub_workflows(store.load, uuid.uuid4(), caller(str(chain[5])))) == [
        ("call", "config.workflow_id", "sub_workflow_too_deep")]


# -- sub-workflows: running ---------------------------------------------------------------------
def test_the_called_workflow_runs_inline_and_answers_its_outputs() -> None:
    store = Published()
    child = store.publish(shouter())
    run = drive(caller(str(child)), NodeRunner(ports(workflows=store), sleep=lambda _s: None), {"word": "hey"})
    assert run.status == "succeeded" and run.outputs == {"loud": "HEY"}
    result = run.results["call"]
    assert [(c.node_id, c.index) for c in result.children] == [("start", 0), ("shout", 0), ("end", 0)]
    forwarded = [data for kind, data in run.events if kind == "node_finished" and data.get("container_id") == "call"]
    assert [data["node_id"] for data in forwarded] == ["start", "shout", "end"]


def test_a_called_workflow_that_fails_or_is_gone_fails_the_node() -> None:
    store = Published()
    failing = store.publish(document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "word", "type": "string"}]}},
        {"id": "shout", "type": "template", "config": {"template": "{{ 1 // 0 }}"}},
        end_of(["shout", "output"])],
        [("start", "shout"), ("shout", "end")]))
    runner = NodeRunner(ports(workflows=store), sleep=lambda _s: None)
    run = drive(caller(str(failing)), runner, {"word": "x"})
    error = run.results["call"].error
    assert run.status == "failed" and error is not None and error.code == "sub_workflow_failed"
    assert error.details["node_id"] == "shout"
    gone = drive(caller(str(uuid.uuid4())), runner, {"word": "x"})
    assert gone.results["call"].error is not None and gone.results["call"].error.code == "sub_workflow_not_found"
    missing_input = drive(caller(str(store.publish(shouter())), inputs=()), runner, {"word": "x"})
    assert missing_input.results["call"].error.code == "sub_workflow_input_invalid"  # type: ignore[union-attr]


def test_depth_and_cycles_are_checked_at_run_time_too() -> None:
    store = Published()
    a = uuid.uuid4()
    store.publish(caller(str(a)), a)  # A calls itself ("latest" may have moved since it was checked)
    run = drive(caller(str(a)), NodeRunner(ports(workflows=store), sleep=lambda _s: None), {"word": "x"})
    error = run.results["call"].error
    assert error is not None and error.code == "sub_workflow_failed"
    assert error.details["error"]["code"] == "sub_workflow_cycle"
    deep = context_for({})
    assert deep.lineage == ()
    # However the call spells the id (upper case): still the same workflow, still a cycle.
    b = uuid.uuid4()
    store.publish(caller(str(b).upper()), b)
    run = drive(caller(str(b)), NodeRunner(ports(workflows=store), sleep=lambda _s: None), {"word": "x"})
    error = run.results["call"].error
    assert error is not None and error.details["error"]["code"] == "sub_workflow_cycle", error


def test_a_store_error_keeps_no_internals() -> None:
    class Broken(Published):
        def resolve_for_run(self, *args: Any, **kwargs: Any) -> RunnableWorkflow:
            raise StratusError("database said something internal")

    run = drive(caller(str(uuid.uuid4())), NodeRunner(ports(workflows=Broken()), sleep=lambda _s: None), {"word": "x"})
    assert run.results["call"].error is not None and run.results["call"].error.code == "sub_workflow_not_found"


# -- Dify import and export -----------------------------------------------------------------------
def dify_app(*nodes: dict[str, Any], edges: list[tuple[str, str, str]]) -> str:
    import yaml

    return yaml.safe_dump({"app": {"mode": "workflow", "name": "x"}, "kind": "app", "version": "0.3.1",
                           "workflow": {"graph": {"nodes": list(nodes), "edges": [
                               {"source": a, "sourceHandle": h, "target": b, "targetHandle": "target"}
                               for a, h, b in edges]}}})


DIFY_START = {"id": "start", "data": {"type": "start", "title": "Start", "variables": [
    {"variable": "topic", "type": "text-input", "label": "Topic", "required": True}]}}
DIFY_END = {"id": "end", "data": {"type": "end", "title": "End", "outputs": [
    {"variable": "out", "value_selector": ["call", "loud"]}]}}


def test_difys_human_input_imports_and_exports_back_equal() -> None:
    from shared.workflows.dify import export_dify, import_dify

    form = {"id": "ask", "data": {
        "type": "human-input", "title": "Ask", "form_content": "Approve {{#start.topic#}}?",
        "inputs": [{"type": "paragraph", "output_variable_name": "reason", "placeholder": None}],
        "user_actions": [{"id": "approve", "title": "Approve", "button_style": "primary"},
                         {"id": "reject", "title": "Reject"}],
        "timeout": 2, "timeout_unit": "day",
        "delivery_methods": [{"type": "email", "enabled": True, "config": {}}]}}
    end = {"id": "end", "data": {"type": "end", "title": "End", "outputs": [
        {"variable": "why", "value_selector": ["ask", "reason"]}]}}
    result = import_dify(dify_app(DIFY_START, form, end, edges=[
        ("start", "source", "ask"), ("ask", "approve", "end"), ("ask", "reject", "end")]),
        model_names=set(), default_model=None)
    node = result.document.node("ask")
    assert node.type == "human_input"
    assert node.config["fields"][0]["name"] == "reason" and node.config["fields"][0]["type"] == "paragraph"
    assert [a["id"] for a in node.config["actions"]] == ["approve", "reject"]
    assert node.config["timeout_s"] == 2 * 86400 and node.config["on_timeout"] == "fail"
    assert any("email delivery was dropped" in warning for warning in result.warnings)
    assert validate_document(result.document) == []
    # A Stratus form with what Dify has no field for comes back equal through the extension.
    richer = result.document.model_copy(deep=True)
    richer.node("ask").config = {**node.config, "timeout_s": 5400, "on_timeout": "default", "fields": [
        {"name": "reason", "type": "select", "options": ["a", "b"], "default": "a", "required": True}]}
    back = import_dify(export_dify(richer, name="x"), model_names=set(), default_model=None).document
    assert back.node("ask").config == HumanInputConfig.model_validate(richer.node("ask").config).model_dump(
        mode="json")


def test_a_dify_workflow_tool_becomes_a_sub_workflow_of_the_tenants_workflow() -> None:
    from shared.workflows.dify import export_dify, import_dify
    from shared.workflows.errors import DslImportUnsupported

    target = str(uuid.uuid4())
    tool = {"id": "call", "data": {
        "type": "tool", "title": "Shout", "provider_type": "workflow", "provider_id": "3f1c-not-ours",
        "provider_name": "shouter", "tool_name": "shouter", "tool_configurations": {},
        "tool_parameters": {"word": {"type": "mixed", "value": "{{#start.topic#}}"},
                            "tone": {"type": "constant", "value": "loud"}}}}
    content = dify_app(DIFY_START, tool, DIFY_END, edges=[("start", "source", "call"), ("call", "source", "end")])
    tenant = {"shouter": (target, ["loud"])}
    result = import_dify(content, model_names=set(), default_model=None, workflows=tenant.get)
    node = result.document.node("call")
    assert node.type == "sub_workflow"
    assert node.config["workflow_id"] == target and node.config["version"] is None
    assert node.config["inputs"] == [{"variable": "word", "value_selector": ["start", "topic"]}]
    assert node.config["outputs"] == [{"variable": "loud", "type": None}]
    assert any("'tone' was dropped" in warning for warning in result.warnings)
    # Without a workflow of that name or id: the located 422, as for any tool.
    with pytest.raises(DslImportUnsupported) as caught:
        import_dify(content, model_names=set(), default_model=None, workflows={}.get)
    assert [(p["node_id"], p["field"]) for p in caught.value.details["problems"]] == [("call", "data.provider_id")]
    builtin = dify_app(DIFY_START, {"id": "call", "data": {**tool["data"], "provider_type": "builtin"}}, DIFY_END,
                       edges=[("start", "source", "call"), ("call", "source", "end")])
    with pytest.raises(DslImportUnsupported):
        import_dify(builtin, model_names=set(), default_model=None, workflows=tenant.get)
    # Exported, it is a workflow tool naming the workflow, and comes back equal (a pinned version too).
    pinned = result.document.model_copy(deep=True)
    pinned.node("call").config = {**node.config, "version": 3}
    exported = export_dify(pinned, name="x")
    assert "provider_type: workflow" in exported
    back = import_dify(exported, model_names=set(), default_model=None, workflows={target: (target, ["loud"])}.get)
    assert back.document.node("call").config == {**node.config, "version": 3}
