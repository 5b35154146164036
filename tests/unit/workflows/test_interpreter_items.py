"""The interpreter's long-iteration protocol (docs/adr/0038-long-iterations-distributed-map.md)
over in-memory ports of our own: the step answers ``items`` with the reader, each batch task
runs its items, the join settles the node; the budget, the engine's limit, a batch that gave up
and ``terminated`` stopping the later batches. (On moto's Distributed Map:
tests/integration/test_workflow_long_iterations.py.)"""

from __future__ import annotations

import uuid
from typing import Any

from shared.workflows.configs import MAX_ITERATION_ITEMS
from shared.workflows.engine.runner import NodeRunner
from shared.workflows.interpreter import (
    MAP_RUN_EVENTS,
    STEP_EVENTS,
    Interpreter,
    ItemBatch,
    ItemsTask,
    Limits,
    LoopState,
    start_state,
)
from shared.workflows.ports import RunRef
from tests.support.engine_runs import document, ports
from tests.support.workflows import MemoryIterationFiles, MemoryRunEvents, MemoryRunStore, RecordingRunner

START = {"id": "start", "type": "start", "config": {"variables": [{"variable": "items", "type": "array[number]"}]}}
CHILDREN: list[dict[str, Any]] = [
    {"id": "each_start", "type": "iteration_start", "parent_id": "each"},
    {"id": "show", "type": "template", "parent_id": "each", "config": {
        "template": "{{ 100 // n }}", "variables": [{"variable": "n", "value_selector": ["each", "item"]}]}},
]
END = {"id": "end", "type": "end", "config": {"outputs": [{"variable": "out", "value_selector": ["each", "output"]}]}}


def iteration(mode: str = "terminated", parallel: int | None = None) -> dict[str, Any]:
    return {"id": "each", "type": "iteration", "config": {
        "start_node_id": "each_start", "iterator_selector": ["start", "items"], "output_selector": ["show", "output"],
        "error_handle_mode": mode, "is_parallel": parallel is not None, "parallel_nums": parallel or 10}}


class Setup:
    def __init__(self, items: list[int], node: dict[str, Any] | None = None, **limits: int) -> None:
        self.ref = RunRef(str(uuid.uuid4()), str(uuid.uuid4()))
        self.store = MemoryRunStore()
        self.store.create(self.ref, document([START, node or iteration(), *CHILDREN, END],
                                             [("start", "each"), ("each_start", "show"), ("each", "end")]),
                          {"items": items})
        self.files = MemoryIterationFiles()
        self.runner = RecordingRunner(NodeRunner(ports(), sleep=lambda _s: None))
        self.events = MemoryRunEvents()
        self.interpreter = Interpreter(self.store, self.runner, self.events, None,
                                       Limits(**{"inline_items": 3, "batch_items": 2, **limits}), self.files)

    def batch(self, state: LoopState, number: int) -> bool:
        start, end = self.files.batches(self.ref, "each").batches[number]
        task = ItemsTask(**state.model_dump(exclude={"node_id"}), node_id="each",
                         batch=ItemBatch(batch=number, start=start, end=end))
        return self.interpreter.run_items(task)

    def join(self, state: LoopState) -> LoopState:
        # What JoinItems hands the step: the ids, next "items" and the node.
        return self.interpreter.step(LoopState(run_id=state.run_id, tenant_id=state.tenant_id, cursor=state.cursor,
                                               next="items", node_id="each"))


def test_a_long_list_answers_items_then_the_join_settles_the_node_in_item_order() -> None:
    run = Setup([1, 2, 4, 5, 10], iteration(parallel=3))
    answer = run.interpreter.step(LoopState.model_validate(start_state(run.ref)))
    assert answer.next == "items" and answer.node_id == "each" and answer.nodes == []
    assert answer.reader is not None and answer.reader.concurrency == 3
    assert answer.cursor.events == STEP_EVENTS + MAP_RUN_EVENTS
    assert run.store.load(run.ref).nodes["each"].status == "running"
    assert run.files.batches(run.ref, "each").batches == [(0, 2), (2, 4), (4, 5)]
    # Out of order, as parallel child executions may finish; a redelivered batch runs nothing again.
    assert [run.batch(answer, number) for number in (2, 0, 1, 0)] == [False] * 4
    assert run.runner.batches == [[4], [0, 1], [2, 3]]
    final = run.join(answer)
    assert final.next == "done"
    assert run.store.runs[run.ref].outputs == {"out": ["100", "50", "25", "20", "10"]}
    each = run.store.runs[run.ref].results["each"]
    assert [(child.node_id, child.index) for child in each.children if child.node_id == "show"] == [
        ("show", i) for i in range(5)]
    types = run.events.types(run.ref)
    assert types.count("iteration.next") == 5 and types.index("node.started") < types.index("iteration.next")
    # Step, Choice, Map + 3 per child execution; then the join's Step, Choice, Done.
    assert run.store.runs[run.ref].transitions == 3 + 3 * 3 + 3
    assert run.join(answer).next == "done", "a redelivered join settles nothing twice"


def test_sequential_iterations_run_one_child_execution_at_a_time_and_short_lists_stay_in_process() -> None:
    long = Setup([1, 2, 4, 5])
    reader = long.interpreter.step(LoopState.model_validate(start_state(long.ref))).reader
    assert reader is not None and reader.concurrency == 1
    short = Setup([1, 2, 4])
    answer = short.interpreter.step(LoopState.model_validate(start_state(short.ref)))
    assert answer.next == "branches" and answer.nodes == ["each"] and not short.files.items_of


def test_the_history_budget_carries_on_before_the_map_and_writes_nothing() -> None:
    run = Setup([1, 2, 4, 5], event_budget=STEP_EVENTS * 2 + MAP_RUN_EVENTS - 1)
    answer = run.interpreter.step(LoopState.model_validate(start_state(run.ref)))
    assert answer.next == "continue" and answer.reader is None
    assert not run.files.items_of and "each" not in run.store.load(run.ref).nodes


def test_a_list_over_the_engines_limit_goes_to_its_branch_which_refuses_it() -> None:
    run = Setup([1] * (MAX_ITERATION_ITEMS + 1))
    answer = run.interpreter.step(LoopState.model_validate(start_state(run.ref)))
    assert answer.next == "branches" and not run.files.items_of


def test_a_batch_without_a_result_fails_the_run_as_a_node_that_gave_up() -> None:
    run = Setup([1, 2, 4, 5], iteration("continue-on-error"))
    answer = run.interpreter.step(LoopState.model_validate(start_state(run.ref)))
    run.batch(answer, 0)  # batch 1's task gave up after its retries
    assert run.join(answer).next == "failed"
    error = run.store.runs[run.ref].error
    assert error is not None and error.code == "node_gave_up" and error.node_id == "each"
    assert "Items 2 to 3 of iteration each" in error.message


def test_terminated_stops_the_batches_after_a_failed_item() -> None:
    run = Setup([1, 0, 4, 5, 10])
    answer = run.interpreter.step(LoopState.model_validate(start_state(run.ref)))
    assert run.batch(answer, 0) is True, "item 1 failed: this child ends the Map run"
    assert run.batch(answer, 1) is True and run.batch(answer, 2) is True
    assert run.runner.batches == [[0, 1]], "no later batch ran"
    assert run.join(answer).next == "failed"
    error = run.store.runs[run.ref].error
    assert error is not None and error.code == "iteration_item_failed" and "Item 1 failed" in error.message
