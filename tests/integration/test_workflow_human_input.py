"""Human input on the interpreter's state machine (moto's Step Functions, the Lambda tasks run
in-process by the local runtime) over in-memory ports of our own: a run pauses on a
``.waitForTaskToken`` task, is resumed with the token kept at the pause, and a pause that times
out (moto honours ``TimeoutSecondsPath`` and raises ``States.Timeout``) takes its defaults or
fails the run (docs/adr/0036-human-input-and-sub-workflows.md)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.aws import LocalAws
from shared.aws.clients import client
from shared.workflows.configs import HumanInputConfig
from shared.workflows.engine.runner import NodeRunner, NodeRunResult
from shared.workflows.executions import StepFunctionsExecutions
from shared.workflows.human_input import check_answer
from shared.workflows.interpreter import execution_name, start_state
from shared.workflows.ports import RunRef
from shared.workflows.state_machines import RUN_FAILED
from shared.workflows.wiring import WorkflowPorts, use_ports
from tests.support.engine_runs import document, ports
from tests.support.stepfunctions import running_local_aws, wait_for_execution
from tests.support.workflows import FakeCodeRunner, MemoryRunEvents, MemoryRunStore, RecordingRunner


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    with running_local_aws(tmp_path_factory.mktemp("human")) as local:
        yield local


class Ports:
    def __init__(self) -> None:
        self.store = MemoryRunStore()
        self.events = MemoryRunEvents()
        self.runner = RecordingRunner(NodeRunner(ports(code_runner=FakeCodeRunner(lambda _v: {})),
                                                 sleep=lambda _s: None))
        use_ports(WorkflowPorts(self.store, self.runner, self.events))

    def start(self, aws: LocalAws, nodes: list[dict[str, Any]], edges: list[tuple[str, ...]],
              inputs: dict[str, Any] | None = None) -> tuple[RunRef, str]:
        ref = RunRef(str(uuid.uuid4()), str(uuid.uuid4()))
        self.store.create(ref, document(nodes, edges), inputs or {})
        arn = client("stepfunctions").start_execution(
            stateMachineArn=aws.state_machine_arn("workflow-run"), name=execution_name(ref.run_id, 0),
            input=json.dumps(start_state(ref)))["executionArn"]
        return ref, arn

    def paused(self, ref: RunRef, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.store.load(ref).status != "paused":
            assert time.monotonic() < deadline, f"the run did not pause: {self.store.load(ref).status}"
            time.sleep(0.05)

    def answer(self, aws: LocalAws, ref: RunRef, node_id: str, answer: dict[str, Any],
               action: str | None = None) -> bool:
        """What the runs API does: check the answer, record it, send the token back."""
        node = self.store.load(ref).document.node(node_id)
        outputs, handle = check_answer(HumanInputConfig.model_validate(node.config), answer, action)
        token = self.store.resume(ref, node, NodeRunResult("succeeded", outputs, handle, {}, None, 1, 0, 5))
        if not token:
            return False
        return StepFunctionsExecutions(client("stepfunctions"), aws.state_machine_arn("workflow-run")).succeed_task(
            token, {})


@pytest.fixture
def use() -> Iterator[type[Ports]]:
    yield Ports
    use_ports(None)


START = {"id": "start", "type": "start", "config": {"variables": [{"variable": "topic", "type": "string"}]}}


def ask(**config: Any) -> dict[str, Any]:
    return {"id": "ask", "type": "human_input", "config": {
        "form_content": "Publish the post on {{#start.topic#}}?",
        "fields": [{"name": "title", "type": "text", "required": True, "default": "Untitled"},
                   {"name": "votes", "type": "number", "default": 0}], **config}}


def end(**outputs: list[str]) -> dict[str, Any]:
    return {"id": "end", "type": "end", "config": {"outputs": [
        {"variable": name, "value_selector": selector} for name, selector in outputs.items()]}}


def test_a_run_pauses_on_the_form_and_the_answer_resumes_it(aws: LocalAws, use: type[Ports]) -> None:
    ports_ = use()
    ref, arn = ports_.start(aws, [START, ask(), end(title=["ask", "title"], votes=["ask", "votes"])],
                            [("start", "ask"), ("ask", "end")], {"topic": "moths"})
    ports_.paused(ref)
    stored = ports_.store.runs[ref]
    assert stored.pending is not None and stored.pending.form["content"] == "Publish the post on moths?"
    assert [f["name"] for f in stored.pending.form["fields"]] == ["title", "votes"]
    assert stored.pending.expires_at is None
    # The pause is an open task: the execution waits, nothing runs.
    assert client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"
    paused = [data for _, kind, data in ports_.events.events if kind == "workflow.paused"]
    assert paused == [{"node_id": "ask", "form": stored.pending.form, "expires_at": None}]
    assert ports_.answer(aws, ref, "ask", {"title": "Moths at night", "votes": "3"})
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "SUCCEEDED", execution
    assert stored.run.status == "succeeded" and stored.outputs == {"title": "Moths at night", "votes": 3}
    # The node was never run by the runner: its outputs are the answer.
    assert "ask" not in ports_.runner.calls
    # A second answer finds nothing paused (a stale resume).
    assert not ports_.answer(aws, ref, "ask", {"title": "again"})


def test_actions_pick_the_branch_the_run_continues_on(aws: LocalAws, use: type[Ports]) -> None:
    ports_ = use()
    nodes = [START, ask(actions=[{"id": "approve", "title": "Approve"}, {"id": "reject", "title": "Reject"}]),
             {"id": "yes", "type": "template", "config": {"template": "published"}},
             {"id": "no", "type": "template", "config": {"template": "dropped"}},
             {"id": "end", "type": "end", "config": {"outputs": [
                 {"variable": "yes", "value_selector": ["yes", "output"]},
                 {"variable": "no", "value_selector": ["no", "output"]},
                 {"variable": "action", "value_selector": ["ask", "action_id"]}]}}]
    ref, arn = ports_.start(aws, nodes, [("start", "ask"), ("ask", "approve", "yes"), ("ask", "reject", "no"),
                                         ("yes", "end"), ("no", "end")])
    ports_.paused(ref)
    assert ports_.answer(aws, ref, "ask", {}, action="reject")
    assert wait_for_execution(arn, timeout_s=60.0)["status"] == "SUCCEEDED"
    stored = ports_.store.runs[ref]
    assert stored.outputs == {"yes": None, "no": "dropped", "action": "reject"}
    assert stored.run.nodes["yes"].status == "skipped"


def test_a_pause_that_times_out_takes_its_defaults(aws: LocalAws, use: type[Ports]) -> None:
    ports_ = use()
    ref, arn = ports_.start(aws, [START, ask(timeout_s=1, on_timeout="default"),
                                  end(title=["ask", "title"], votes=["ask", "votes"])],
                            [("start", "ask"), ("ask", "end")])
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "SUCCEEDED", execution
    stored = ports_.store.runs[ref]
    assert stored.outputs == {"title": "Untitled", "votes": 0}
    resumed = [data for _, kind, data in ports_.events.events if kind == "workflow.resumed"]
    assert resumed == [{"node_id": "ask", "timed_out": True}]
    assert stored.pending is not None and stored.pending.expires_at is not None
    # The token is stale now: an answer changes nothing.
    assert not ports_.answer(aws, ref, "ask", {"title": "late"})


def test_a_pause_that_times_out_fails_the_run_when_so_configured(aws: LocalAws, use: type[Ports]) -> None:
    ports_ = use()
    ref, arn = ports_.start(aws, [START, ask(timeout_s=1, on_timeout="fail"), end(title=["ask", "title"])],
                            [("start", "ask"), ("ask", "end")])
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "FAILED" and execution.get("error") == RUN_FAILED
    stored = ports_.store.runs[ref]
    assert stored.run.status == "failed"
    assert stored.error is not None and stored.error.code == "human_input_timeout" and stored.error.node_id == "ask"
    assert stored.run.nodes["ask"].status == "failed"


def test_an_answer_racing_the_timeout_wins_when_it_is_recorded_first(aws: LocalAws, use: type[Ports]) -> None:
    ports_ = use()
    ref, arn = ports_.start(aws, [START, ask(timeout_s=2, on_timeout="fail"), end(title=["ask", "title"])],
                            [("start", "ask"), ("ask", "end")])
    ports_.paused(ref)
    node = ports_.store.load(ref).document.node("ask")
    # The answer is recorded, but its token only goes back after the timeout fired.
    assert ports_.store.resume(ref, node, NodeRunResult("succeeded", {"title": "just in time", "votes": 0},
                                                        "source", {}, None, 1, 0, 5))
    time.sleep(3)
    execution = wait_for_execution(arn, timeout_s=60.0)
    assert execution["status"] == "SUCCEEDED", execution
    assert ports_.store.runs[ref].outputs == {"title": "just in time"}


def test_cancelling_a_paused_run_stops_its_execution(aws: LocalAws, use: type[Ports]) -> None:
    ports_ = use()
    ref, arn = ports_.start(aws, [START, ask(), end()], [("start", "ask"), ("ask", "end")])
    ports_.paused(ref)
    assert ports_.store.finish(ref, "cancelled")
    executions = StepFunctionsExecutions(client("stepfunctions"), aws.state_machine_arn("workflow-run"))
    executions.stop(arn, "cancelled")
    # (AWS ends the execution ABORTED at once; moto 5.2 leaves a stopped execution waiting on its
    # token until the wait's own timeout, so only the run's record is asserted here.)
    assert ports_.store.runs[ref].run.nodes["ask"].status == "cancelled"
    assert not ports_.answer(aws, ref, "ask", {"title": "too late"})
