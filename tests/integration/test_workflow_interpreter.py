"""The workflow interpreter's state machine on moto's Step Functions, its Lambda tasks run
in-process by the local runtime, over the engine's real node runner and in-memory ports of our
own (a run store, the run's events, a code runner): the loop protocol end to end, with the ASL
the stacks deploy."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from infra.local.aws import LocalAws
from shared.aws.clients import client
from shared.config import get_settings
from shared.workflows.engine.runner import NodeRunner
from shared.workflows.interpreter import Limits, execution_name, start_state
from shared.workflows.ports import RunRef
from shared.workflows.sandbox.ports import CodeRaised
from shared.workflows.state_machines import RUN_FAILED
from shared.workflows.wiring import WorkflowPorts, use_ports
from tests.support.engine_runs import document, ports
from tests.support.stepfunctions import running_local_aws, wait_for_execution
from tests.support.workflows import FakeCodeRunner, MemoryRunEvents, MemoryRunStore, RecordingRunner


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    with running_local_aws(tmp_path_factory.mktemp("workflows")) as local:
        yield local


class Ports:
    def __init__(self, code_answer: Any = None, limits: Limits | None = None) -> None:
        self.store = MemoryRunStore()
        self.events = MemoryRunEvents()
        self.code = FakeCodeRunner(code_answer or (lambda values: {"value": len(values.get("tag") or "")}))
        self.runner = RecordingRunner(NodeRunner(ports(code_runner=self.code), sleep=lambda _s: None))
        use_ports(WorkflowPorts(self.store, self.runner, self.events, limits or Limits()))

    def start(self, aws: LocalAws, nodes: list[dict[str, Any]], edges: list[tuple[str, ...]]) -> tuple[RunRef, str]:
        ref = RunRef(str(uuid.uuid4()), str(uuid.uuid4()))
        self.store.create(ref, document(nodes, edges), {})
        arn = client("stepfunctions").start_execution(
            stateMachineArn=aws.state_machine_arn("workflow-run"), name=execution_name(ref.run_id, 0),
            input=json.dumps(start_state(ref)))["executionArn"]
        return ref, arn


@pytest.fixture
def use() -> Iterator[type[Ports]]:
    yield Ports
    use_ports(None)


START = {"id": "start", "type": "start", "config": {"variables": []}}


def code(node_id: str, tag: str = "") -> dict[str, Any]:
    return {"id": node_id, "type": "code", "config": {
        "code": "def main(tag):\n    return {}\n", "outputs": {"value": {"type": "number"}},
        "variables": [{"variable": "tag", "value_selector": ["start", "missing"]}] if not tag else []}}


def template(node_id: str, text: str, **variables: list[str]) -> dict[str, Any]:
    return {"id": node_id, "type": "template", "config": {"template": text, "variables": [
        {"variable": name, "value_selector": selector} for name, selector in variables.items()]}}


def end(**outputs: list[str]) -> dict[str, Any]:
    return {"id": "end", "type": "end", "config": {"outputs": [
        {"variable": name, "value_selector": selector} for name, selector in outputs.items()]}}


def test_parallel_branches_join_and_the_run_succeeds(aws: LocalAws, use: type[Ports]) -> None:
    ports_ = use(code_answer=lambda values: {"value": 7})
    ref, arn = ports_.start(aws, [
        START, code("left"), code("right"), template("join", "{{ a }}/{{ b }}", a=["left", "value"],
                                                      b=["right", "value"]),
        end(out=["join", "output"])],
        [("start", "left"), ("start", "right"), ("left", "join"), ("right", "join"), ("join", "end")])
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "SUCCEEDED", execution
    stored = ports_.store.runs[ref]
    assert stored.run.status == "succeeded" and stored.outputs == {"out": "7/7"}
    writes = stored.writes
    # Both branches went out together (running) before either finished, each in its own invocation.
    assert writes.index(("right", "running")) < writes.index(("left", "succeeded"))
    assert sorted(call for call in ports_.runner.calls if call in ("left", "right")) == ["left", "right"]
    assert ports_.code.calls == 2
    # The state carried identifiers only: the final state is the run's ids, cursor and verdict.
    output = json.loads(execution["output"])
    assert set(output) == {"run_id", "tenant_id", "cursor", "next", "nodes", "node_id", "reader", "timeout_s"}
    assert output["next"] == "done" and output["run_id"] == ref.run_id
    assert stored.transitions >= 8


def test_a_failing_node_fails_the_execution_and_the_run_with_its_error(aws: LocalAws, use: type[Ports]) -> None:
    ports_ = use(code_answer=CodeRaised("ValueError: no"))
    ref, arn = ports_.start(aws, [START, code("broken"), end()], [("start", "broken"), ("broken", "end")])
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "FAILED" and execution.get("error") == RUN_FAILED
    stored = ports_.store.runs[ref]
    assert stored.run.status == "failed"
    assert stored.error is not None and stored.error.code == "code_raised" and stored.error.node_id == "broken"
    assert "end" not in ports_.runner.calls


def test_a_transient_database_failure_is_retried_by_the_state_machine(aws: LocalAws, use: type[Ports]) -> None:
    calls = {"n": 0}

    def flaky(values: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise psycopg.OperationalError("the connection was lost")
        return {"value": 1}

    ports_ = use(code_answer=flaky)
    ref, arn = ports_.start(aws, [START, code("node"), end(v=["node", "value"])],
                           [("start", "node"), ("node", "end")])
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "SUCCEEDED", execution
    assert ports_.store.runs[ref].outputs == {"v": 1}
    assert calls["n"] == 2, "the branch task ran again (TaskInterrupted), the node did not fail"


def test_a_long_run_carries_on_in_a_new_execution_before_its_history_budget(aws: LocalAws, use: type[Ports]) -> None:
    # The carry-on task starts the machine the local runtime set, as CDK sets it in AWS.
    assert get_settings().workflow_run_state_machine_arn == aws.state_machine_arn("workflow-run")
    # One inline node per step, and a budget of a few steps per execution.
    ports_ = use(limits=Limits(max_fused=1, event_budget=30))
    chain = [template(f"n{i}", str(i)) for i in range(10)]
    edges = [("start", "n0")] + [(f"n{i}", f"n{i + 1}") for i in range(9)]
    ref, first = ports_.start(aws, [START, *chain], edges)
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
    assert ports_.store.load(ref).status == "succeeded"
    assert ports_.runner.calls == ["start"] + [f"n{i}" for i in range(10)], "each node ran once, in order"
