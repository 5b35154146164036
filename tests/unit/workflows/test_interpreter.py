"""The interpreter's loop protocol without Step Functions, over the engine's real node runner
and in-memory ports of our own: which nodes are fused, which go out as branches, joins, lost and
failed nodes, the fusion limit and the history budget, redelivery, cancellation, transitions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from shared.workflows.engine.runner import NodeRunner
from shared.workflows.interpreter import (
    MAP_EVENTS,
    STEP_EVENTS,
    BranchTask,
    Cursor,
    FailureTask,
    Interpreter,
    Limits,
    LoopState,
    continue_as_new,
    execution_name,
    start_state,
)
from shared.workflows.ports import RunRef
from tests.support.engine_runs import document, ports
from tests.support.workflows import FakeCodeRunner, MemoryRunEvents, MemoryRunStore, RecordingRunner


class FakeExecutions:
    def __init__(self) -> None:
        self.started: list[tuple[str, Mapping[str, Any]]] = []

    def start(self, name: str, state: Mapping[str, Any]) -> str:
        self.started.append((name, state))
        return f"arn:execution:{name}"

    def stop(self, execution_arn: str, cause: str) -> None:
        return None

    def status(self, execution_arn: str) -> str | None:
        return "RUNNING"


def template(node_id: str, text: str, **variables: list[str]) -> dict[str, Any]:
    return {"id": node_id, "type": "template", "config": {"template": text, "variables": [
        {"variable": name, "value_selector": selector} for name, selector in variables.items()]}}


def code(node_id: str, **variables: list[str]) -> dict[str, Any]:
    return {"id": node_id, "type": "code", "config": {"code": "def main(**kw):\n    return {}\n", "outputs": {
        "value": {"type": "number"}}, "variables": [
        {"variable": name, "value_selector": selector} for name, selector in variables.items()]}}


START = {"id": "start", "type": "start", "config": {"variables": [{"variable": "n", "type": "number"}]}}


def end(**outputs: list[str]) -> dict[str, Any]:
    return {"id": "end", "type": "end", "config": {"outputs": [
        {"variable": name, "value_selector": selector} for name, selector in outputs.items()]}}


class Setup:
    def __init__(self, nodes: list[dict[str, Any]], edges: list[tuple[str, ...]], *,
                 inputs: dict[str, Any] | None = None, code_answer: Any = None, limits: Limits | None = None) -> None:
        self.ref = RunRef(str(uuid.uuid4()), str(uuid.uuid4()))
        self.store = MemoryRunStore()
        self.store.create(self.ref, document(nodes, edges), inputs or {"n": 1})
        self.code = FakeCodeRunner(code_answer or (lambda values: {"value": 10}))
        self.runner = RecordingRunner(NodeRunner(ports(code_runner=self.code), sleep=lambda _s: None))
        self.events = MemoryRunEvents()
        self.executions = FakeExecutions()
        self.interpreter = Interpreter(self.store, self.runner, self.events, self.executions, limits)

    def first(self) -> LoopState:
        return LoopState.model_validate(start_state(self.ref))

    def branch(self, state: LoopState, node_id: str) -> None:
        self.interpreter.run_branch(BranchTask(**state.model_dump(exclude={"node_id"}), node_id=node_id))

    @property
    def stored(self) -> Any:
        return self.store.runs[self.ref]

    def statuses(self) -> dict[str, str]:
        return {node_id: record.status for node_id, record in self.store.load(self.ref).nodes.items()}


def test_consecutive_inline_nodes_are_fused_into_one_step_and_the_run_completes() -> None:
    run = Setup([START, template("a", "{{ n }}!", n=["start", "n"]), template("b", "{{ a }}?", a=["a", "output"]),
                 end(out=["b", "output"])], [("start", "a"), ("a", "b"), ("b", "end")])
    answer = run.interpreter.step(run.first())
    assert answer.next == "done" and answer.cursor.step == 1 and answer.cursor.events == STEP_EVENTS
    assert run.runner.calls == ["start", "a", "b", "end"]
    assert run.store.load(run.ref).status == "succeeded"
    assert run.stored.outputs == {"out": "1!?"}
    # Step task + Choice + Done.
    assert run.stored.transitions == 3
    assert run.events.types(run.ref)[0] == "workflow.started"
    assert run.events.types(run.ref)[-2:] == ["workflow.finished", "done"]
    assert run.events.types(run.ref).count("node.finished") == 4


def test_ready_branch_nodes_go_out_together_and_the_join_waits_for_both() -> None:
    run = Setup([START, code("left", n=["start", "n"]), code("right"),
                 template("join", "{{ l }}+{{ r }}", l=["left", "value"], r=["right", "value"]),
                 end(out=["join", "output"])],
                [("start", "left"), ("start", "right"), ("left", "join"), ("right", "join"), ("join", "end")])
    answer = run.interpreter.step(run.first())
    assert answer.next == "branches" and answer.nodes == ["left", "right"] and answer.node_id is None
    assert answer.cursor.events == STEP_EVENTS + MAP_EVENTS + 2 * 8
    assert run.statuses() == {"start": "succeeded", "left": "running", "right": "running"}
    run.branch(answer, "left")
    run.branch(answer, "left")  # redelivered: runs nothing again
    assert run.code.calls == 1
    run.branch(answer, "right")
    final = run.interpreter.step(answer)
    assert final.next == "done" and final.cursor.step == 2
    assert run.stored.outputs == {"out": "10+10"}
    assert run.runner.calls == ["start", "left", "right", "join", "end"]
    # Step, Choice, Map, 2 items; Step, Choice, Done.
    assert run.stored.transitions == 5 + 3


def test_a_dispatched_node_without_a_result_fails_the_run() -> None:
    run = Setup([START, code("slow"), end()], [("start", "slow"), ("slow", "end")])
    answer = run.interpreter.step(run.first())
    assert answer.next == "branches"
    final = run.interpreter.step(answer)  # the branch gave up: no result recorded
    assert final.next == "failed"
    assert run.stored.error.code == "node_gave_up" and run.stored.error.node_id == "slow"
    assert run.statuses()["slow"] == "cancelled"


def test_a_failed_branch_node_fails_the_run_with_its_error_and_nothing_after_it_runs() -> None:
    from shared.workflows.sandbox.ports import CodeRaised

    run = Setup([START, code("bad"), end()], [("start", "bad"), ("bad", "end")],
                code_answer=CodeRaised("ZeroDivisionError: division by zero"))
    answer = run.interpreter.step(run.first())
    run.branch(answer, "bad")
    final = run.interpreter.step(answer)
    assert final.next == "failed"
    assert run.stored.error.code == "code_raised" and run.stored.error.node_id == "bad"
    assert "division by zero" in run.stored.error.message
    assert "end" not in run.runner.calls
    assert "error" in run.events.types(run.ref)


def test_an_inline_node_that_fails_fails_the_run_in_the_step() -> None:
    run = Setup([START, template("t", "{{ 1 / 0 }}"), end()], [("start", "t"), ("t", "end")])
    final = run.interpreter.step(run.first())
    assert final.next == "failed"
    assert run.stored.error.node_id == "t" and run.stored.error.code.startswith("template_")


def test_the_fusion_limit_loops_back_and_the_budget_carries_on_as_new() -> None:
    chain = [template(f"t{i}", str(i)) for i in range(5)]
    edges = [("start", "t0")] + [(f"t{i}", f"t{i + 1}") for i in range(4)]
    run = Setup([START, *chain], edges, limits=Limits(max_fused=2, event_budget=STEP_EVENTS * 2 + 3))
    first = run.interpreter.step(run.first())
    assert first.next == "step" and run.runner.calls == ["start", "t0"]
    second = run.interpreter.step(first)
    assert second.next == "continue", "a third step would pass the budget"
    arn = continue_as_new(run.executions, second)
    name, state = run.executions.started[0]
    assert arn.endswith(name) and name == execution_name(run.ref.run_id, 1)
    fresh = LoopState.model_validate(state)
    assert fresh.cursor == Cursor(generation=1, step=second.cursor.step, events=0)
    while (answer := run.interpreter.step(fresh)).next == "step":
        fresh = answer
    assert answer.next == "done"
    assert run.runner.calls == ["start", "t0", "t1", "t2", "t3", "t4"], "each node ran once, in order"


def test_a_finished_or_cancelled_run_answers_its_outcome_again_and_runs_nothing() -> None:
    run = Setup([START, end()], [("start", "end")])
    done = run.interpreter.step(run.first())
    assert run.interpreter.step(run.first()).next == done.next == "done"
    assert run.runner.calls == ["start", "end"]
    cancelled = Setup([START, code("slow"), end()], [("start", "slow"), ("slow", "end")])
    answer = cancelled.interpreter.step(cancelled.first())
    assert cancelled.store.finish(cancelled.ref, "cancelled")
    cancelled.branch(answer, "slow")  # the run is over: the branch runs nothing
    assert cancelled.code.calls == 0
    assert cancelled.interpreter.step(answer).next == "done"
    assert cancelled.statuses()["slow"] == "cancelled"


def test_a_result_arriving_after_cancel_is_dropped() -> None:
    run = Setup([START, code("slow"), end()], [("start", "slow"), ("slow", "end")])
    answer = run.interpreter.step(run.first())

    def cancel_then_answer(values: dict[str, Any]) -> dict[str, Any]:
        run.store.finish(run.ref, "cancelled")
        return {"value": 1}

    run.code.answer = cancel_then_answer
    run.branch(answer, "slow")
    assert run.statuses()["slow"] == "cancelled"
    assert run.store.load(run.ref).status == "cancelled"


def test_failure_task_records_the_caught_error() -> None:
    run = Setup([START, end()], [("start", "end")])
    run.interpreter.fail(FailureTask(**start_state(run.ref), error={"Error": "States.Timeout", "Cause": "slow"}))
    assert run.stored.error.code == "workflow_task_failed"
    assert "States.Timeout" in run.stored.error.message
    assert run.store.load(run.ref).status == "failed"


def test_state_carries_ids_only_and_refuses_unknown_cursor_fields() -> None:
    state = start_state(RunRef("t", "r"))
    assert set(state) == {"run_id", "tenant_id", "cursor"}
    with pytest.raises(ValueError, match="extra"):
        LoopState.model_validate({**state, "cursor": {"step": 1, "outputs": {}}})
