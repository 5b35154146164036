"""The workflow interpreter's state machine as deployed: a Standard machine with a fixed name
(its own task reaches it without a reference cycle) and exactly the grants its tasks need."""

from __future__ import annotations

from typing import Any

from functions import catalog
from infra.state_machines import physical_name, reaches_itself
from tests.infra.support import Synth, as_list, ref_logical_id, render, statements

RUN = "workflow-run"


def _machine(synth: Synth) -> dict[str, Any]:
    machines = synth.templates["workflows"].find_resources("AWS::StepFunctions::StateMachine")
    (props,) = [m["Properties"] for logical_id, m in machines.items()
                if logical_id.startswith("WorkflowRunStateMachine")]
    return dict(props)


def _grants(synth: Synth, function: str) -> list[tuple[str, Any]]:
    deployed = synth.function(function)
    role = ref_logical_id(deployed.props["Role"])
    return [(action, resource)
            for policy in synth.templates[deployed.stack].find_resources("AWS::IAM::Policy").values()
            if role in [ref_logical_id(r) for r in policy["Properties"]["Roles"]]
            for s in statements(policy) for action in as_list(s["Action"]) for resource in as_list(s["Resource"])]


def test_the_interpreter_machine_is_standard_and_named(synth: Synth) -> None:
    (spec,) = [s for s in catalog.STATE_MACHINES if s.name == RUN]
    assert spec.domain == "workflows" and reaches_itself(spec)
    props = _machine(synth)
    assert props["StateMachineType"] == "STANDARD", "human input waits on task tokens"
    assert props["StateMachineName"] == physical_name(spec, synth.root.config.prefix)
    definition = props["DefinitionString"]
    assert "lambda:invoke.waitForTaskToken" in definition and '"Type": "Map"' in definition


def test_the_carry_on_task_may_start_only_this_machine(synth: Synth) -> None:
    grants = _grants(synth, "workflow-continue")
    states = [(action, render(resource)) for action, resource in grants if action.startswith("states:")]
    prefix = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>"
    machine = f"{prefix}:stateMachine:{_machine(synth)['StateMachineName']}"
    assert states == [("states:StartExecution", machine)]
    env = synth.function("workflow-continue").env
    assert render(env["WORKFLOW_RUN_STATE_MACHINE_ARN"]) == machine


def test_the_other_tasks_reach_nothing_beyond_their_logs(synth: Synth) -> None:
    for name in ("workflow-step", "workflow-branch", "workflow-await", "workflow-fail"):
        actions = {action for action, _ in _grants(synth, name)}
        assert not {a for a in actions if a.startswith(("states:", "s3:", "secretsmanager:", "sqs:"))}, name
        assert "VpcConfig" not in synth.function(name).props
