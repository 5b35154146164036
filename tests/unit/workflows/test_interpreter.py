"""The interpreter's loop protocol without Step Functions: which nodes are ready, what comes
next, fusion, the history budget, idempotent redelivery, and no production ports yet."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from shared.workflows.interpreter import (
    MAP_EVENTS,
    STEP_EVENTS,
    BranchTask,
    Cursor,
    FailureTask,
    InputTask,
    Interpreter,
    Limits,
    LoopState,
    execution_name,
    start_state,
)
from shared.workflows.ports import Edge, ExecutorRegistry, Graph, Node, NodeContext, RunRef, UnknownNodeType
from shared.workflows.wiring import WorkflowsUnavailable, interpreter, use_ports
from tests.support.workflows import MemoryRunStore, RecordingExecutor

REF = RunRef("tenant-1", "run-1")


def _value(context: NodeContext) -> dict[str, Any]:
    return {"value": 1 + sum(int(o["value"]) for o in context.inputs.values())}


class FakeExecutions:
    def __init__(self) -> None:
        self.started: list[tuple[str, Mapping[str, Any]]] = []

    def start(self, name: str, state: Mapping[str, Any]) -> str:
        self.started.append((name, state))
        return f"arn:execution:{name}"


def _setup(nodes: dict[str, str], edges: list[tuple[str, str]], limits: Limits | None = None,
           ) -> tuple[Interpreter, MemoryRunStore, dict[str, RecordingExecutor], FakeExecutions]:
    store = MemoryRunStore()
    store.create(REF, Graph(tuple(Node(i, t) for i, t in nodes.items()), tuple(Edge(a, b) for a, b in edges)))
    executors = {"inline": RecordingExecutor("inline", _value), "branch": RecordingExecutor("branch", _value),
                 "input": RecordingExecutor("input", _value)}
    executions = FakeExecutions()
    return Interpreter(store, ExecutorRegistry(executors), executions, limits), store, executors, executions


def _start() -> LoopState:
    return LoopState.model_validate(start_state(REF))


def test_consecutive_inline_nodes_are_fused_into_one_step_and_the_run_completes() -> None:
    interp, store, executors, _ = _setup({"a": "inline", "b": "inline", "c": "inline"}, [("a", "b"), ("b", "c")])
    answer = interp.step(_start())
    assert answer.next == "done" and answer.cursor.step == 1 and answer.cursor.events == STEP_EVENTS
    assert executors["inline"].calls == ["a", "b", "c"]
    assert store.load(REF).status == "succeeded"
    assert store.load(REF).nodes["c"].output == {"value": 3}


def test_several_ready_nodes_go_out_as_branches_and_the_join_waits_for_both() -> None:
    interp, store, executors, _ = _setup({"a": "branch", "b": "branch", "join": "inline"},
                                         [("a", "join"), ("b", "join")])
    answer = interp.step(_start())
    assert answer.next == "branches" and answer.nodes == ["a", "b"] and answer.node_id is None
    assert answer.cursor.events == STEP_EVENTS + MAP_EVENTS + 2 * 8
    assert {n: s.status for n, s in store.load(REF).nodes.items()} == {"a": "dispatched", "b": "dispatched"}
    interp.run_branch(BranchTask(**answer.model_dump(exclude={"node_id"}), node_id="a"))
    interp.run_branch(BranchTask(**answer.model_dump(exclude={"node_id"}), node_id="a"))  # redelivered
    assert executors["branch"].calls == ["a"]
    assert Interpreter.ready(store.load(REF)) == [], "join waits for b"
    interp.run_branch(BranchTask(**answer.model_dump(exclude={"node_id"}), node_id="b"))
    final = interp.step(answer)
    assert final.next == "done" and final.cursor.step == 2
    assert store.load(REF).nodes["join"].output == {"value": 3}


def test_a_dispatched_node_without_a_result_fails_the_run() -> None:
    interp, store, _, _ = _setup({"a": "branch", "b": "branch"}, [])
    answer = interp.step(_start())
    interp.run_branch(BranchTask(**answer.model_dump(exclude={"node_id"}), node_id="a"))
    # b's branch gave up (its Catch ended the item): the next step finds it unfinished.
    assert interp.step(answer).next == "failed"
    stored = store.runs[REF]
    assert stored.run.status == "failed" and stored.error is not None and stored.error.code == "node_gave_up"
    assert stored.run.state("b").status == "failed"


def test_input_nodes_pause_the_run_one_at_a_time() -> None:
    interp, store, _, _ = _setup({"ask": "input", "other": "branch", "after": "inline"},
                                 [("ask", "after"), ("other", "after")])
    answer = interp.step(_start())
    assert answer.next == "wait" and answer.node_id == "ask" and answer.nodes == []
    interp.await_input(InputTask(**answer.model_dump(), task_token="token-1"))  # type: ignore[arg-type]
    assert store.runs[REF].tokens == {"ask": "token-1"}
    # Answered (the answer recorded), the other ready node runs next.
    store.set_node(REF, "ask", "succeeded", {"value": 10})
    assert interp.step(answer).nodes == ["other"]


def test_a_wait_answered_without_its_result_fails_the_run() -> None:
    interp, store, _, _ = _setup({"ask": "input"}, [])
    answer = interp.step(_start())
    assert interp.step(answer).next == "failed"
    assert store.runs[REF].error is not None and store.runs[REF].error.code == "node_unfinished"


def test_the_fusion_limit_loops_back_and_the_budget_carries_on_as_new() -> None:
    chain = [f"n{i}" for i in range(5)]
    interp, store, _, executions = _setup(dict.fromkeys(chain, "inline"), list(itertools.pairwise(chain)),
                                          Limits(max_fused=2, event_budget=3 * STEP_EVENTS))
    first = interp.step(_start())
    assert first.next == "step" and first.cursor.events == 2 * STEP_EVENTS
    second = interp.step(first)
    assert second.next == "continue", "another step would pass the budget"
    assert [n for n, s in store.load(REF).nodes.items() if s.status == "succeeded"] == chain[:4]
    arn = interp.continue_as_new(second)
    ((name, state),) = executions.started
    assert name == execution_name("run-1", 1) == "run-1-1" and arn.endswith(name)
    assert state == {"run_id": "run-1", "tenant_id": "tenant-1",
                     "cursor": {"generation": 1, "step": second.cursor.step, "events": 0}}
    assert interp.step(LoopState.model_validate(state)).next == "done"


def test_a_finished_run_answers_its_outcome_again_on_redelivery() -> None:
    interp, _, executors, _ = _setup({"a": "inline"}, [])
    answer = interp.step(_start())
    assert interp.step(_start()).next == answer.next == "done"
    assert executors["inline"].calls == ["a"]
    interp.fail(FailureTask(**_start().model_dump(), error={"Error": "X", "Cause": "y"}))
    assert interp.step(_start()).next == "failed"


def test_failure_task_records_the_caught_error() -> None:
    interp, store, _, _ = _setup({"a": "inline"}, [])
    interp.fail(FailureTask(run_id="run-1", tenant_id="tenant-1",
                            error={"Error": "Lambda.Unknown", "Cause": "x" * 5000}))
    error = store.runs[REF].error
    assert error is not None and error.code == "Lambda.Unknown" and len(error.message) == 1000


def test_an_unknown_node_type_is_an_error_not_a_skipped_node() -> None:
    interp, _, _, _ = _setup({"a": "mystery"}, [])
    with pytest.raises(UnknownNodeType, match="mystery"):
        interp.step(_start())


def test_state_carries_ids_only_and_refuses_unknown_cursor_fields() -> None:
    state = LoopState.model_validate({"run_id": "r", "tenant_id": "t", "cursor": {"step": 3}, "error": {"x": 1}})
    assert state.cursor == Cursor(step=3)
    assert set(state.model_dump()) == {"run_id", "tenant_id", "cursor", "next", "nodes", "node_id"}
    with pytest.raises(ValueError):
        LoopState.model_validate({"run_id": "r", "tenant_id": "t", "cursor": {"payload": "big"}})


def test_without_ports_there_is_no_interpreter_rather_than_invented_results() -> None:
    use_ports(None)
    with pytest.raises(WorkflowsUnavailable):
        interpreter()


def test_graph_validation() -> None:
    with pytest.raises(ValueError):
        Graph((Node("a", "x"), Node("a", "y")))
    with pytest.raises(ValueError):
        Graph((Node("a", "x"),), (Edge("a", "b"),))
