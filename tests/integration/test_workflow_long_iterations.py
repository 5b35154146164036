"""Long iterations through the interpreter's Distributed Map (docs/adr/0038-long-iterations-distributed-map.md)
on moto's Step Functions, with the ASL the stacks deploy, the catalog's task handlers run
in-process, the payloads bucket in moto's S3, and in-memory ports of our own (the run store,
the run's events). Each workflow runs twice, with the iteration in its node's invocation and
through the Map (the inline bound lowered), and both runs must answer the same."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.aws import PAYLOADS_BUCKET, LocalAws
from shared.aws.clients import client
from shared.workflows.engine.runner import NodeRunner
from shared.workflows.interpreter import Limits, execution_name, start_state
from shared.workflows.iterations import prefix
from shared.workflows.ports import RunRef
from shared.workflows.wiring import WorkflowPorts, use_ports
from tests.support.engine_runs import document, ports
from tests.support.stepfunctions import running_local_aws, wait_for_execution
from tests.support.workflows import MemoryRunEvents, MemoryRunStore, RecordingRunner, StoredRun


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    with running_local_aws(tmp_path_factory.mktemp("long-iterations")) as local:
        yield local


@pytest.fixture(autouse=True)
def _production_ports_after() -> Iterator[None]:
    yield
    use_ports(None)


START = {"id": "start", "type": "start", "config": {"variables": [{"variable": "items", "type": "array[number]"}]}}


def iteration(mode: str = "terminated", *, parallel: int | None = None, flatten: bool = True) -> dict[str, Any]:
    return {"id": "each", "type": "iteration", "config": {
        "start_node_id": "each_start", "iterator_selector": ["start", "items"], "output_selector": ["show", "output"],
        "error_handle_mode": mode, "flatten_output": flatten, "is_parallel": parallel is not None,
        "parallel_nums": parallel or 10}}


# The children: 100 // n fails the item whose n is 0 (a division by zero in the template).
CHILDREN: list[dict[str, Any]] = [
    {"id": "each_start", "type": "iteration_start", "parent_id": "each"},
    {"id": "show", "type": "template", "parent_id": "each", "config": {
        "template": "{{ index }}:{{ 100 // n }}", "variables": [
            {"variable": "n", "value_selector": ["each", "item"]},
            {"variable": "index", "value_selector": ["each", "index"]}]}},
]
END = {"id": "end", "type": "end", "config": {"outputs": [{"variable": "out", "value_selector": ["each", "output"]}]}}
EDGES: list[tuple[str, ...]] = [("start", "each"), ("each_start", "show"), ("each", "end")]


def run(aws: LocalAws, node: dict[str, Any], items: list[int], limits: Limits,
        ) -> tuple[StoredRun, RecordingRunner, dict[str, Any], RunRef]:
    store, events = MemoryRunStore(), MemoryRunEvents()
    runner = RecordingRunner(NodeRunner(ports(), sleep=lambda _s: None))
    use_ports(WorkflowPorts(store, runner, events, limits))
    ref = RunRef(str(uuid.uuid4()), str(uuid.uuid4()))
    store.create(ref, document([START, node, *CHILDREN, END], EDGES), {"items": items})
    arn = client("stepfunctions").start_execution(
        stateMachineArn=aws.state_machine_arn("workflow-run"), name=execution_name(ref.run_id, 0),
        input=json.dumps(start_state(ref)))["executionArn"]
    execution = wait_for_execution(arn, timeout_s=240.0)
    execution["history"] = client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return store.runs[ref], runner, execution, ref


IN_PROCESS = Limits(inline_items=1_000)


def history(stored: StoredRun) -> list[tuple[Any, ...]]:
    """What the run's node history shows of each node, and of each child run of the iteration."""
    nodes = [(record.node_id, record.status, record.handle, dict(record.outputs or {}),
              (record.error or {}).get("code")) for record in stored.run.nodes.values()]
    children = [(child.node_id, child.index, child.result.status, child.result.outputs,
                 child.result.error.code if child.result.error else None)
                for child in stored.results["each"].children] if "each" in stored.results else []
    return [*sorted(nodes), *children]


def test_a_500_item_iteration_runs_through_the_map_and_answers_as_in_process(aws: LocalAws) -> None:
    items = list(range(1, 501))
    inline, inline_runner, _, _ = run(aws, iteration(), items, IN_PROCESS)
    mapped, runner, execution, ref = run(aws, iteration(), items, Limits(inline_items=200, batch_items=50))
    assert execution["status"] == "SUCCEEDED", execution
    assert mapped.run.status == inline.run.status == "succeeded"
    assert mapped.outputs == inline.outputs == {"out": [f"{i}:{100 // n}" for i, n in enumerate(items)]}
    assert history(mapped) == history(inline)
    assert len(mapped.results["each"].children) == 1000, "its start and template for each item"
    # Through the Map, in batches of 50 (one child execution each); in process, none.
    assert not inline_runner.batches
    assert sorted(runner.batches) == [list(range(start, start + 50)) for start in range(0, 500, 50)]
    types = [event["type"] for event in execution["history"]]
    assert "MapRunStarted" in types and "MapRunSucceeded" in types
    # The children's executions have histories of their own: the run's stays short.
    assert len(types) < 60
    # The state carried identifiers only, never an item.
    output = json.loads(execution["output"])
    assert set(output) == {"run_id", "tenant_id", "cursor", "next", "nodes", "node_id", "reader", "timeout_s"}
    assert output["next"] == "done" and output["reader"] is None
    map_input = next(json.loads(event["stateEnteredEventDetails"]["input"]) for event in execution["history"]
                     if event["type"] == "MapStateEntered")
    assert map_input["node_id"] == "each" and set(map_input["reader"]) == {"bucket", "key", "concurrency"}
    assert mapped.transitions > inline.transitions
    # The items, the reader's file and the results are under the run in the payloads bucket.
    keys = [o["Key"] for o in client("s3").list_objects_v2(Bucket=PAYLOADS_BUCKET,
                                                             Prefix=prefix(ref, "each"))["Contents"]]
    assert sum("/results/" in key for key in keys) == 10 and sum("/items/" in key for key in keys) == 5


# Items 3 and 7 fail (n = 0); batches of 4 put them in the first two child executions.
FAILING = [5, 4, 2, 0, 1, 10, 20, 0, 50, 25, 4, 5, 2, 1, 10, 20, 50, 25]


@pytest.mark.parametrize("mode", ["terminated", "continue-on-error", "remove-abnormal-output"])
def test_each_error_mode_answers_the_same_through_the_map(aws: LocalAws, mode: str) -> None:
    inline, _, _, _ = run(aws, iteration(mode), FAILING, IN_PROCESS)
    mapped, runner, execution, _ = run(aws, iteration(mode), FAILING, Limits(inline_items=10, batch_items=4))
    assert runner.batches, "the list went through the Map"
    assert mapped.run.status == inline.run.status
    assert mapped.outputs == inline.outputs
    assert history(mapped) == history(inline)
    if mode == "terminated":
        assert execution["status"] == "FAILED"
        assert mapped.error is not None and inline.error is not None
        assert mapped.error.code == inline.error.code == "iteration_item_failed"
        assert mapped.error.node_id == "each" and "Item 3 failed at node 'show'" in mapped.error.message
        assert mapped.error.message == inline.error.message
        # The Map stopped at the failed item's batch: the batches after it did not run.
        assert [batch[0] for batch in runner.batches] == [0]
    else:
        assert execution["status"] == "SUCCEEDED"
        expected = [f"{i}:{100 // n}" if n else None for i, n in enumerate(FAILING)]
        if mode == "remove-abnormal-output":
            expected = [value for value in expected if value is not None]
        assert mapped.outputs == {"out": expected}
        assert len(runner.batches) == 5


def test_parallel_items_keep_item_order(aws: LocalAws) -> None:
    items = [n % 7 + 1 for n in range(60)]
    inline, _, _, _ = run(aws, iteration(parallel=4), items, IN_PROCESS)
    mapped, runner, execution, _ = run(aws, iteration(parallel=4), items, Limits(inline_items=10, batch_items=1))
    assert execution["status"] == "SUCCEEDED", execution
    assert len(runner.batches) == 60, "one item per child execution"
    assert mapped.outputs == inline.outputs == {"out": [f"{i}:{100 // n}" for i, n in enumerate(items)]}
    assert history(mapped) == history(inline)
