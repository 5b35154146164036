"""Generated workflow graphs (Hypothesis, bounded and derandomized so CI is reproducible): a
document either fails validation with every problem located (a node id and a field, or a place
in the document), or it runs through the interpreter's loop to a final status with the failing
node named. Never an unlocated problem, never an exception out of the engine, never a loop that
does not end.

The documents are random DAGs of template, code, if/else and aggregator nodes between a start
and an end, some then broken on purpose (a cycle, a dangling reference, a missing end, a NUL
character, a repeated id, a config of the wrong shape, an unknown type)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.workflows.engine.runner import NodeRunner
from shared.workflows.interpreter import BranchTask, Interpreter, LoopState, continue_as_new, start_state
from shared.workflows.ports import RunRef
from shared.workflows.sandbox.ports import CodeRaised
from shared.workflows.validation import check_document, validate_document
from tests.support.engine_runs import ports
from tests.support.workflows import FakeCodeRunner, MemoryRunEvents, MemoryRunStore

# An output each generated node type answers (the one a reference to it reads).
OUTPUT = {"start": "n", "template": "output", "code": "value", "if_else": "result", "variable_aggregator": "output"}
MIDDLE_TYPES = ("template", "code", "if_else", "variable_aggregator")
MUTATIONS = ("cycle", "dangling_reference", "no_end", "nul", "repeated_id", "bad_config", "unknown_type",
             "edge_to_nowhere")
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass
class Generated:
    raw: dict[str, Any]
    mutation: str | None
    code_fails: bool


def _binding(name: str, selector: list[str]) -> dict[str, Any]:
    return {"variable": name, "value_selector": selector}


@st.composite
def documents(draw: st.DrawFn) -> Generated:
    count = draw(st.integers(min_value=0, max_value=7))
    kinds = {"start": "start"}
    order = ["start"]
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start", "config": {
        "variables": [{"variable": "n", "type": "number", "required": True}]}}]
    edges: list[dict[str, Any]] = []
    successors: dict[str, int] = {"start": 0}

    def edge_from(source: str, target: str) -> None:
        handle = draw(st.sampled_from(["yes", "false"])) if kinds[source] == "if_else" else None
        edges.append({"source": source, "target": target, **({"source_handle": handle} if handle else {})})
        successors[source] += 1

    for index in range(count):
        node_id = f"n{index}"
        kind = draw(st.sampled_from(MIDDLE_TYPES))
        upstream = draw(st.lists(st.sampled_from(order), min_size=1, max_size=2, unique=True))
        source = draw(st.sampled_from(upstream))
        selector = [source, OUTPUT[kinds[source]]]
        if kind == "template":
            text = draw(st.sampled_from(["{{ x }}!", "[{{ x }}]", "{{ 1 / 0 }}", "{{ x | upper }}", "plain"]))
            config: dict[str, Any] = {"template": text, "variables": [_binding("x", selector)]}
        elif kind == "code":
            config = {"code": "def main(x):\n    return {'value': 1}\n", "variables": [_binding("x", selector)],
                      "outputs": {"value": {"type": "number"}}}
        elif kind == "if_else":
            config = {"cases": [{"case_id": "yes", "conditions": [{
                "variable_selector": ["start", "n"], "comparison_operator": draw(st.sampled_from([">", "<", "="])),
                "value": draw(st.integers(min_value=-2, max_value=2))}]}]}
        else:
            config = {"output_type": "string", "variables": [
                [node, OUTPUT[kinds[node]]] for node in upstream if kinds[node] in ("template",)] or [
                ["start", "n"]]}
            if config["variables"] == [["start", "n"]]:
                config["output_type"] = "number"
        nodes.append({"id": node_id, "type": kind, "config": config,
                      "error_strategy": draw(st.sampled_from(["fail", "fail", "default_value"])),
                      "default_value": {OUTPUT[kind]: "fallback"} if kind == "template" else {}})
        kinds[node_id] = kind
        successors[node_id] = 0
        for parent in upstream:
            edge_from(parent, node_id)
        order.append(node_id)
    end_source = draw(st.sampled_from(order))
    nodes.append({"id": "end", "type": "end", "config": {"outputs": [
        _binding("out", [end_source, OUTPUT[kinds[end_source]]])]}})
    kinds["end"] = "end"
    for node_id in order:
        if successors[node_id] == 0 or (kinds[node_id] == "if_else" and successors[node_id] < 2):
            # Every leaf (and each branch of an if/else) reaches the end.
            edges.append({"source": node_id, "target": "end",
                          **({"source_handle": "false" if successors[node_id] else "yes"}
                             if kinds[node_id] == "if_else" else {})})
            if kinds[node_id] == "if_else" and successors[node_id] == 0:
                edges.append({"source": node_id, "target": "end", "source_handle": "false"})
            successors[node_id] += 1
    raw = {"nodes": nodes, "edges": edges}
    mutation = draw(st.one_of(st.none(), st.sampled_from(MUTATIONS)))
    applied = _mutate(raw, mutation, draw)
    return Generated(raw, mutation if applied else None, draw(st.booleans()))


def _mutate(raw: dict[str, Any], mutation: str | None, draw: st.DrawFn) -> bool:
    """Break the document as ``mutation`` says; False when it does not apply (no middle node)."""
    nodes, edges = raw["nodes"], raw["edges"]
    middle = [node for node in nodes if node["id"] not in ("start", "end")]
    target = draw(st.sampled_from(middle)) if middle else None
    if mutation is None:
        return False
    if mutation == "cycle" and target is not None:
        edges.append({"source": target["id"], "target": target["id"]})
    elif mutation == "dangling_reference":
        nodes[-1]["config"]["outputs"].append(_binding("ghost", ["nowhere", "output"]))
    elif mutation == "no_end":
        raw["nodes"] = nodes[:-1]
        raw["edges"] = [edge for edge in edges if edge["target"] != "end"]
    elif mutation == "nul":
        (target or nodes[-1])["title"] = "bad\x00title"
    elif mutation == "repeated_id" and target is not None:
        nodes.append({**target})
    elif mutation == "bad_config":
        (target or nodes[-1])["config"] = {"template": 5, "outputs": "none", "cases": []}
    elif mutation == "unknown_type":
        (target or nodes[-1])["type"] = "teleport"
    elif mutation == "edge_to_nowhere":
        edges.append({"source": "start", "target": "missing-node"})
    else:
        return False
    return True


def _located(problem: Mapping[str, Any], ids: set[str]) -> bool:
    node_id, where = problem["node_id"], problem["field"]
    if problem["code"] == "definition_too_large":
        return True
    return (node_id in ids) or (node_id is None and bool(where))


class _Executions:
    def __init__(self) -> None:
        self.started: list[Mapping[str, Any]] = []

    def start(self, name: str, state: Mapping[str, Any]) -> str:
        self.started.append(state)
        return f"arn:execution:{name}"

    def stop(self, execution_arn: str, cause: str) -> None:
        return None

    def status(self, execution_arn: str) -> str | None:
        return "RUNNING"


def _run(generated: Generated, n: int) -> tuple[str, Any, int]:
    """The run driven as the state machine would; (final status, its error, steps taken)."""
    document = check_document(generated.raw)
    ref = RunRef(str(uuid.uuid4()), str(uuid.uuid4()))
    store = MemoryRunStore()
    store.create(ref, document, {"n": n})
    code = FakeCodeRunner(CodeRaised("ValueError: generated failure") if generated.code_fails
                          else (lambda values: {"value": 1}))
    executions = _Executions()
    interpreter = Interpreter(store, NodeRunner(ports(code_runner=code), sleep=lambda _s: None), MemoryRunEvents(),
                              executions)
    state = LoopState.model_validate(start_state(ref))
    bound = 4 * len(document.nodes) + 4
    for steps in range(1, bound + 1):
        answer = interpreter.step(state)
        if answer.next in ("done", "failed"):
            return answer.next, store.runs[ref].error, steps
        if answer.next == "branches":
            for node_id in answer.nodes:
                interpreter.run_branch(BranchTask(**answer.model_dump(exclude={"node_id"}), node_id=node_id))
        elif answer.next == "continue":
            continue_as_new(executions, answer)
            answer = LoopState.model_validate(executions.started[-1])
        else:
            assert answer.next == "step", f"unexpected next {answer.next!r} for these node types"
        state = answer
    raise AssertionError(f"the run did not end within {bound} steps")


@SETTINGS
@given(documents(), st.integers(min_value=-3, max_value=3))
def test_a_generated_document_is_located_invalid_or_runs_to_a_final_status(generated: Generated, n: int) -> None:
    problems = [problem.as_dict() for problem in validate_document(generated.raw)]
    ids = {str(node.get("id")) for node in generated.raw["nodes"] if isinstance(node.get("id"), str)}
    if problems:
        unlocated = [problem for problem in problems if not _located(problem, ids)]
        assert not unlocated, f"problems without a location: {unlocated}"
        assert all(problem["code"] and problem["message"] for problem in problems)
        if generated.mutation == "nul":
            assert "nul_character" in {problem["code"] for problem in problems}
        event(f"refused: {generated.mutation}")
        return
    assert generated.mutation is None, f"the {generated.mutation} mutation passed validation"
    status, error, _steps = _run(generated, n)
    assert status in ("done", "failed")
    event(f"run {status}")
    if status == "failed":
        assert error is not None and error.node_id in ids, f"a failed run names its node: {error}"


def test_a_nul_character_is_located_at_its_node_and_field() -> None:
    raw = {"nodes": [{"id": "start", "type": "start", "config": {"variables": []}},
                     {"id": "greet", "type": "template", "config": {"template": "hi\x00", "variables": []}},
                     {"id": "end", "type": "end", "config": {"outputs": []}}],
           "edges": [{"source": "start", "target": "greet"}, {"source": "greet", "target": "end"}],
           "notes\x00": "x"}
    problems = [problem.as_dict() for problem in validate_document(raw)]
    assert problems == [
        {"node_id": "greet", "field": "config.template", "code": "nul_character",
         "message": "holds a NUL (\\u0000) character, which text cannot store: remove it"},
        {"node_id": None, "field": "notes\\u0000", "code": "nul_character",
         "message": "holds a NUL (\\u0000) character, which text cannot store: remove it"}]
