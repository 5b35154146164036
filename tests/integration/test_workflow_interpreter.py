"""The workflow interpreter's state machine on moto's Step Functions, its Lambda tasks run
in-process by the local runtime, over test ports (an in-memory run store, recording node
executors): the loop protocol end to end, with the ASL the stacks deploy."""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.aws import LocalAws
from infra.local.invoker import LocalInvoker
from shared.aws.clients import client, reset_clients
from shared.config import get_settings, reset_settings
from shared.workflows.interpreter import Limits, execution_name, start_state
from shared.workflows.ports import Edge, ExecutorRegistry, Graph, Node, NodeContext, RunRef
from shared.workflows.state_machines import RUN_FAILED
from shared.workflows.wiring import WorkflowPorts, use_ports
from tests.support.stepfunctions import wait_for_execution
from tests.support.workflows import MemoryRunStore, NodeBroke, RecordingExecutor


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    saved_env = dict(os.environ)
    os.environ.setdefault("STRATUS_RUNTIME", "local")
    local = LocalAws(tmp_path_factory.mktemp("workflows"), LocalInvoker())
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        reset_settings()
        reset_clients()


def _value(context: NodeContext) -> dict[str, Any]:
    return {"value": len(context.node.id)}


def _sum(context: NodeContext) -> dict[str, Any]:
    return {"value": sum(int(output["value"]) for output in context.inputs.values())}


def _broken(context: NodeContext) -> dict[str, Any]:
    raise NodeBroke(f"node {context.node.id} broke")


class Ports:
    def __init__(self, limits: Limits | None = None) -> None:
        self.store = MemoryRunStore()
        self.executors = {
            "value": RecordingExecutor("inline", _value),
            "slow": RecordingExecutor("branch", _value),
            "sum": RecordingExecutor("inline", _sum),
            "ask": RecordingExecutor("input", _value),
            "broken": RecordingExecutor("inline", _broken),
            "broken-branch": RecordingExecutor("branch", _broken),
        }
        use_ports(WorkflowPorts(self.store, ExecutorRegistry(self.executors), limits or Limits()))

    def start(self, aws: LocalAws, graph: Graph) -> tuple[RunRef, str]:
        ref = RunRef(str(uuid.uuid4()), str(uuid.uuid4()))
        self.store.create(ref, graph)
        arn = client("stepfunctions").start_execution(
            stateMachineArn=aws.state_machine_arn("workflow-run"), name=execution_name(ref.run_id, 0),
            input=json.dumps(start_state(ref)))["executionArn"]
        return ref, arn


@pytest.fixture
def ports() -> Iterator[Ports]:
    yield Ports()
    use_ports(None)


def _graph(nodes: dict[str, str], edges: list[tuple[str, str]]) -> Graph:
    return Graph(tuple(Node(node_id, node_type) for node_id, node_type in nodes.items()),
                 tuple(Edge(source, target) for source, target in edges))


def test_parallel_branches_join_and_the_run_succeeds(aws: LocalAws, ports: Ports) -> None:
    # start → (left, right) in parallel → join, which sums what both branches produced.
    graph = _graph({"start": "value", "left": "slow", "right-hand": "slow", "join": "sum"},
                   [("start", "left"), ("start", "right-hand"), ("left", "join"), ("right-hand", "join")])
    ref, arn = ports.start(aws, graph)
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "SUCCEEDED", execution
    run = ports.store.load(ref)
    assert run.status == "succeeded"
    assert {node: state.status for node, state in run.nodes.items()} == {
        "start": "succeeded", "left": "succeeded", "right-hand": "succeeded", "join": "succeeded"}
    assert run.nodes["join"].output == {"value": len("left") + len("right-hand")}
    # The two branches went out together (dispatched) and each ran once, in its own invocation.
    writes = ports.store.runs[ref].writes
    assert writes.index(("left", "dispatched")) < writes.index(("left", "succeeded"))
    assert writes.index(("right-hand", "dispatched")) < writes.index(("left", "succeeded"))
    assert sorted(ports.executors["slow"].calls) == ["left", "right-hand"]
    assert ports.executors["sum"].calls == ["join"]
    # The state carried identifiers only: the final state is the run's ids, cursor and verdict.
    output = json.loads(execution["output"])
    assert set(output) == {"run_id", "tenant_id", "cursor", "next", "nodes", "node_id"}
    assert output["next"] == "done" and output["run_id"] == ref.run_id


def test_a_failing_node_follows_catch_and_the_run_fails_with_its_error(aws: LocalAws, ports: Ports) -> None:
    graph = _graph({"start": "value", "broken": "broken", "after": "value"},
                   [("start", "broken"), ("broken", "after")])
    ref, arn = ports.start(aws, graph)
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "FAILED"
    assert execution.get("error") == RUN_FAILED
    stored = ports.store.runs[ref]
    assert stored.run.status == "failed"
    assert stored.error is not None and stored.error.code == "NodeBroke"
    assert "node broken broke" in stored.error.message
    assert stored.run.state("start").status == "succeeded"
    assert ports.executors["value"].calls == ["start"], "nothing after the failed node ran"


def test_a_branch_that_gives_up_fails_the_run(aws: LocalAws, ports: Ports) -> None:
    graph = _graph({"fine": "slow", "bad": "broken-branch", "join": "sum"}, [("fine", "join"), ("bad", "join")])
    ref, arn = ports.start(aws, graph)
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "FAILED" and execution.get("error") == RUN_FAILED
    stored = ports.store.runs[ref]
    assert stored.run.status == "failed"
    assert stored.error is not None and stored.error.code == "node_gave_up"
    assert stored.run.state("bad").status == "failed"
    assert stored.run.state("fine").status == "succeeded"
    assert ports.executors["sum"].calls == []


def test_human_input_pauses_on_a_task_token_until_it_is_answered(aws: LocalAws, ports: Ports) -> None:
    graph = _graph({"ask": "ask", "after": "value"}, [("ask", "after")])
    ref, arn = ports.start(aws, graph)
    token = ports.store.wait_for_token(ref, "ask")
    time.sleep(0.3)
    assert client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert ports.store.load(ref).state("ask").status == "waiting"
    assert ports.executors["value"].calls == []
    # Whoever answers the input records it, then sends the token back.
    ports.store.set_node(ref, "ask", "succeeded", {"answer": "yes"})
    client("stepfunctions").send_task_success(taskToken=token, output=json.dumps({"ok": True}))
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "SUCCEEDED", execution
    assert ports.store.load(ref).status == "succeeded"
    assert ports.executors["value"].calls == ["after"]


def test_a_rejected_input_fails_the_run_through_catch(aws: LocalAws, ports: Ports) -> None:
    ref, arn = ports.start(aws, _graph({"ask": "ask"}, []))
    token = ports.store.wait_for_token(ref, "ask")
    client("stepfunctions").send_task_failure(taskToken=token, error="InputRejected", cause="the reviewer said no")
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "FAILED"
    stored = ports.store.runs[ref]
    assert stored.error is not None and stored.error.code == "InputRejected"


def test_a_long_run_carries_on_in_a_new_execution_before_its_history_budget(aws: LocalAws) -> None:
    # The carry-on task starts the machine the local runtime set, as CDK sets it in AWS.
    assert get_settings().workflow_run_state_machine_arn == aws.state_machine_arn("workflow-run")
    # One inline node per step, and a budget of a few steps per execution.
    ports = Ports(Limits(max_fused=1, event_budget=30))
    try:
        chain = [f"n{i}" for i in range(6)]
        graph = _graph(dict.fromkeys(chain, "value"), list(itertools.pairwise(chain)))
        ref, first = ports.start(aws, graph)
        assert wait_for_execution(first, timeout_s=60.0)["status"] == "SUCCEEDED"
        executions = [first]
        for generation in range(1, 10):
            arn = first.rsplit(":", 1)[0] + ":" + execution_name(ref.run_id, generation)
            try:
                described = wait_for_execution(arn, timeout_s=60.0)
            except client("stepfunctions").exceptions.ExecutionDoesNotExist:
                break
            assert described["status"] == "SUCCEEDED", described
            cursor = json.loads(described["input"])["cursor"]
            assert cursor["generation"] == generation and cursor["events"] == 0 and cursor["step"] > 0
            executions.append(arn)
        assert len(executions) >= 3, "the run went on in fresh executions"
        run = ports.store.load(ref)
        assert run.status == "succeeded"
        assert ports.executors["value"].calls == chain, "each node ran once, in order, across executions"
    finally:
        use_ports(None)
