"""Graph planning as Dify's engine reads a graph: taken and dead edges, branches, joins, skip
propagation, failure branches; the graph order of end nodes and the run's merged outputs."""

from __future__ import annotations

from shared.workflows.definition import NODE_TYPES
from shared.workflows.engine.graph import MODES, NodeOutcome, Plan, graph_order, plan
from shared.workflows.engine.runner import run_outputs
from shared.workflows.variables import VariablePool
from tests.support.engine_runs import document

OK = NodeOutcome("succeeded", "source")


def nodes(*ids: str) -> list[dict[str, object]]:
    kinds = {"start": "start", "if": "if_else", "join": "variable_aggregator"}
    return [{"id": i, "type": kinds.get(i, "end" if i.startswith("end") else "template")} for i in ids]


def test_a_chain_runs_one_node_after_the_other() -> None:
    doc = document(nodes("start", "a", "end"), [("start", "a"), ("a", "end")])
    assert plan(doc, {}) == Plan(ready=["start"], skipped=[], finished=False)
    assert plan(doc, {"start": NodeOutcome("running")}) == Plan([], [], finished=False)
    assert plan(doc, {"start": OK}).ready == ["a"]
    assert plan(doc, {"start": OK, "a": OK}).ready == ["end"]
    assert plan(doc, {"start": OK, "a": OK, "end": OK}) == Plan([], [], finished=True)


def test_a_succeeded_node_without_a_handle_left_by_source() -> None:
    doc = document(nodes("start", "a"), [("start", "a")])
    assert plan(doc, {"start": NodeOutcome("succeeded")}).ready == ["a"]


def test_the_branch_not_taken_is_skipped_to_the_end_and_the_join_runs() -> None:
    # start -> if -(yes)-> a -> b -> join -> end ; if -(false)-> c -> d -> join
    doc = document(nodes("start", "if", "a", "b", "c", "d", "join", "end"),
                   [("start", "if"), ("if", "yes", "a"), ("a", "b"), ("b", "join"),
                    ("if", "false", "c"), ("c", "d"), ("d", "join"), ("join", "end")])
    after_if = plan(doc, {"start": OK, "if": NodeOutcome("succeeded", "yes")})
    # One call follows the skip through c and d; the join still waits for the taken branch.
    assert after_if == Plan(ready=["a"], skipped=["c", "d"], finished=False)
    outcomes = {"start": OK, "if": NodeOutcome("succeeded", "yes"), "c": NodeOutcome("skipped"),
                "d": NodeOutcome("skipped"), "a": OK}
    assert plan(doc, outcomes).ready == ["b"]
    assert plan(doc, {**outcomes, "b": OK}).ready == ["join"]


def test_a_join_waits_for_every_branch_that_runs() -> None:
    doc = document(nodes("start", "a", "b", "join"), [("start", "a"), ("start", "b"), ("a", "join"), ("b", "join")])
    assert plan(doc, {"start": OK}).ready == ["a", "b"]
    assert plan(doc, {"start": OK, "a": OK, "b": NodeOutcome("running")}) == Plan([], [], finished=False)
    assert plan(doc, {"start": OK, "a": OK, "b": OK}).ready == ["join"]


def test_a_node_all_of_whose_sources_were_skipped_is_skipped_and_so_on_downstream() -> None:
    doc = document(nodes("start", "if", "a", "b", "join", "end_a", "end_join"),
                   [("start", "if"), ("if", "yes", "a"), ("if", "false", "b"), ("a", "join"), ("b", "join"),
                    ("a", "end_a"), ("join", "end_join")])
    step = plan(doc, {"start": OK, "if": NodeOutcome("succeeded", "false")})
    assert step.ready == ["b"] and step.skipped == ["a", "end_a"]
    outcomes = {"start": OK, "if": NodeOutcome("succeeded", "false"), "a": NodeOutcome("skipped"),
                "end_a": NodeOutcome("skipped"), "b": OK}
    assert plan(doc, outcomes).ready == ["join"]


def test_both_handles_to_one_node_run_it_once() -> None:
    doc = document(nodes("start", "if", "a"), [("start", "if"), ("if", "yes", "a"), ("if", "false", "a")])
    assert plan(doc, {"start": OK, "if": NodeOutcome("succeeded", "false")}).ready == ["a"]


def test_a_failure_branch_runs_instead_of_the_success_path() -> None:
    doc = document(nodes("start", "a", "ok", "recover", "end"),
                   [("start", "a"), ("a", "ok"), ("a", "fail-branch", "recover"), ("ok", "end"), ("recover", "end")])
    handled = plan(doc, {"start": OK, "a": NodeOutcome("succeeded", "fail-branch")})
    assert handled == Plan(ready=["recover"], skipped=["ok"], finished=False)
    normal = plan(doc, {"start": OK, "a": OK})
    assert normal == Plan(ready=["ok"], skipped=["recover"], finished=False)


def test_a_failed_node_leaves_its_downstream_pending_and_the_plan_finished() -> None:
    doc = document(nodes("start", "a", "b", "end"), [("start", "a"), ("start", "b"), ("a", "end"), ("b", "end")])
    step = plan(doc, {"start": OK, "a": NodeOutcome("failed"), "b": OK})
    assert step == Plan(ready=[], skipped=[], finished=True)
    # A cancelled node settles nothing either.
    assert plan(doc, {"start": OK, "a": NodeOutcome("cancelled"), "b": OK}).ready == []


def test_every_node_type_has_an_execution_mode() -> None:
    assert set(MODES) == set(NODE_TYPES)
    assert {t for t, mode in MODES.items() if mode == "branch"} == {
        "llm", "code", "http_request", "knowledge_retrieval", "question_classifier", "parameter_extractor",
        "document_extractor", "iteration", "loop", "sub_workflow", "tool", "agent"}
    assert MODES["list_operator"] == "inline"
    # The only node that waits for a person.
    assert {t for t, mode in MODES.items() if mode == "input"} == {"human_input"}


def test_graph_order_is_topological_with_document_order_between_peers() -> None:
    doc = document(nodes("end2", "b", "start", "a", "end1"),
                   [("start", "a"), ("start", "b"), ("a", "end1"), ("b", "end2"), ("end1", "end2")])
    assert graph_order(doc) == ["start", "b", "a", "end1", "end2"]


def test_run_outputs_merge_the_end_nodes_that_ran_in_graph_order() -> None:
    doc = document(nodes("start", "end1", "end2", "end3"),
                   [("start", "end1"), ("start", "end2"), ("start", "end3"), ("end1", "end2")])
    pool = VariablePool({}, {"end1": {"x": 1, "y": 1}, "end2": {"y": 2}, "end3": {"z": 3}})
    outcomes = {"start": OK, "end1": OK, "end2": OK, "end3": NodeOutcome("skipped")}
    assert run_outputs(doc, outcomes, pool) == {"x": 1, "y": 2}
