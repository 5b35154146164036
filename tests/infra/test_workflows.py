"""The workflow interpreter's state machine as deployed: a Standard machine with a fixed name
(its own task reaches it without a reference cycle) and exactly the grants its tasks need."""

from __future__ import annotations

import json
from typing import Any

from functions import catalog
from infra.state_machines import physical_name, reaches_itself
from shared.workflows.sandbox.ports import MAX_MEMORY_MB, MAX_WALL_SECONDS
from tests.infra.support import Synth, as_list, points_at, ref_logical_id, render, statements

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
    assert '"Mode": "DISTRIBUTED"' in definition and "s3:getObject" in definition


def _shown(resource: Any) -> str:
    try:
        return render(resource)
    except ValueError:  # a Fn::GetAtt (its task functions, its log group): not what is checked here
        return json.dumps(resource)


def test_the_machine_may_start_its_own_children_and_read_only_the_runs_item_files(synth: Synth) -> None:
    # A long iteration's Distributed Map (docs/adr/0038-long-iterations-distributed-map.md).
    props = _machine(synth)
    name = props["StateMachineName"]
    role = ref_logical_id(props["RoleArn"])
    grants = [(action, _shown(resource))
              for policy in synth.templates["workflows"].find_resources("AWS::IAM::Policy").values()
              if role in [ref_logical_id(r) for r in policy["Properties"]["Roles"]]
              for s in statements(policy) for action in as_list(s["Action"]) for resource in as_list(s["Resource"])]
    prefix = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>"
    assert ("states:StartExecution", f"{prefix}:stateMachine:{name}") in grants
    assert {a for a, r in grants if r == f"{prefix}:execution:{name}/*"} == {"states:DescribeExecution",
                                                                              "states:StopExecution"}
    s3 = {(a, r) for a, r in grants if a.startswith("s3:")}
    assert s3 == {("s3:GetObject", "<PayloadsBucketArn>/workflow-runs/*"), ("s3:ListBucket", "<PayloadsBucketArn>")}
    listing = [s for policy in synth.templates["workflows"].find_resources("AWS::IAM::Policy").values()
               if role in [ref_logical_id(r) for r in policy["Properties"]["Roles"]]
               for s in statements(policy) if "s3:ListBucket" in as_list(s["Action"])]
    assert [s["Condition"] for s in listing] == [{"StringLike": {"s3:prefix": ["workflow-runs/*"]}}]


def test_the_carry_on_task_may_start_only_this_machine(synth: Synth) -> None:
    grants = _grants(synth, "workflow-continue")
    states = [(action, render(resource)) for action, resource in grants if action.startswith("states:")]
    prefix = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>"
    machine = f"{prefix}:stateMachine:{_machine(synth)['StateMachineName']}"
    assert states == [("states:StartExecution", machine)]
    env = synth.function("workflow-continue").env
    assert render(env["WORKFLOW_RUN_STATE_MACHINE_ARN"]) == machine


def test_the_node_running_tasks_reach_the_run_store_and_nothing_to_control_executions(synth: Synth) -> None:
    payloads = {"s3:GetObject", "s3:PutObject"}
    for name in ("workflow-step", "workflow-branch", "workflow-items"):
        actions = {action for action, _ in _grants(synth, name)}
        assert payloads <= actions, name
        # A tool node calling a workflow tool starts a run of it (docs/tools.md): that only.
        started = {"states:StartExecution"} if name != "workflow-step" else set()
        assert {a for a in actions if a.startswith(("states:", "sqs:"))} == started, name
        assert "VpcConfig" in synth.function(name).props, "the run store is in the VPC"
        assert {"DATABASE_SECRET_ARN", "REDIS_URL", "PAYLOADS_BUCKET"} <= set(synth.function(name).env)
    # The step runs cheap nodes only: no provider keys, no KMS; the branch calls providers.
    step = {action for action, _ in _grants(synth, "workflow-step")}
    assert not {a for a in step if a.startswith(("kms:", "bedrock:", "lambda:"))}
    for name in ("workflow-branch", "workflow-items"):
        branch = {action for action, _ in _grants(synth, name)}
        assert "kms:Decrypt" in branch and "lambda:InvokeFunction" in branch, name
    # Tool nodes run where nodes run; publishing, importing and running a draft check them.
    for name in ("workflow-branch", "workflow-items", "chat", "workflows-publish", "workflows-import",
                 "workflow-stream"):
        assert "TOOLS_MCP_FUNCTION_NAME" in synth.function(name).env, name
        assert "kms:Decrypt" in {action for action, _ in _grants(synth, name)}, name
    for name in ("workflow-await", "workflow-fail"):
        actions = {action for action, _ in _grants(synth, name)}
        assert not {a for a in actions if a.startswith(("states:", "s3:", "sqs:", "lambda:"))}, name


def test_the_run_routes_and_the_reconciler_control_only_what_they_need(synth: Synth) -> None:
    def states(name: str) -> set[str]:
        return {action for action, _ in _grants(synth, name) if action.startswith("states:")}

    # Starting (every mode) and listing runs, following their events: the streaming function.
    # Coze's stream_resume answers a pause there too (docs/adr/0049-coze-workflows.md).
    assert states("workflow-stream") == {"states:StartExecution", "states:SendTaskSuccess",
                                         "states:SendTaskFailure", "states:SendTaskHeartbeat"}
    assert {(action, _shown(resource)) for action, resource in _grants(synth, "workflow-stream")
            if action == "s3:PutObject"} == {("s3:PutObject", "<PayloadsBucketArn>/workflow-runs/*")}
    assert states("workflow-runs-cancel") == {"states:StopExecution"}
    # Resuming a paused run answers its task token, and controls nothing else.
    assert states("workflow-runs-resume") == {"states:SendTaskSuccess", "states:SendTaskFailure",
                                              "states:SendTaskHeartbeat"}
    # An answer past the run store's inline bound is written to the payloads bucket: the resume
    # route writes there, under the runs' prefix only; reading a run never writes.
    assert {(action, _shown(resource)) for action, resource in _grants(synth, "workflow-runs-resume")
            if action == "s3:PutObject"} == {("s3:PutObject", "<PayloadsBucketArn>/workflow-runs/*")}
    assert "s3:PutObject" not in {action for action, _ in _grants(synth, "workflow-runs-get")}
    assert states("workflow-runs-get") == set()
    assert states("workflow-runs-reconcile") == {"states:DescribeExecution", "states:GetExecutionHistory"}
    # A follower ends within WORKFLOW_STREAM_FOLLOW_S (840 s): the function outlives it.
    assert synth.function("workflow-stream").props["Timeout"] == 900


# The code sandbox (docs/adr/0032-code-sandbox.md) ----------------------------------------------
CODE = "workflow-code"
# The variables every function gets (infra/functions.py) and the Parameters and Secrets
# extension's own configuration: none holds a secret or names a resource.
_PLATFORM_ENV = {"STRATUS_RUNTIME", "STRATUS_FUNCTION", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE",
                 "LOG_LEVEL", "AUTHORIZER_CACHE_TTL_S"}
_EXTENSION_ENV_PREFIXES = ("PARAMETERS_SECRETS_EXTENSION_", "SECRETS_MANAGER_T", "SSM_PARAMETER_STORE_T")


def _logical_id_of(value: Any) -> str | None:
    """The resource a ``Ref`` or ``Fn::GetAtt`` points at."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    return ref_logical_id(value)


def test_the_code_sandbox_reaches_nothing_beyond_its_logs(synth: Synth) -> None:
    deployed = synth.function(CODE)
    props = deployed.props
    grants = _grants(synth, CODE)
    assert {action for action, _ in grants} == {"logs:CreateLogStream", "logs:PutLogEvents",
                                                "xray:PutTelemetryRecords", "xray:PutTraceSegments"}
    # Its logs are its own log group's, no other.
    log_group = ref_logical_id(props["LoggingConfig"]["LogGroup"])
    assert {_logical_id_of(resource) for action, resource in grants if action.startswith("logs:")} == {log_group}
    role = synth.templates[deployed.stack].find_resources("AWS::IAM::Role")[ref_logical_id(props["Role"])]
    assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]
    assert "VpcConfig" not in props, "outside the VPC: nothing of the platform is reachable on the network"
    env = deployed.env
    unexplained = {name for name in env if name not in _PLATFORM_ENV and not name.startswith(_EXTENSION_ENV_PREFIXES)}
    assert unexplained == {"WORKFLOW_CODE_WIPE_DIR"}, "no secret, database, cache or resource setting"
    assert env["WORKFLOW_CODE_WIPE_DIR"] == "/tmp"
    # Room for the largest limits: a full vCPU (CPU seconds take wall seconds) and the longest run.
    assert props["MemorySize"] >= 1769 and props["MemorySize"] >= MAX_MEMORY_MB + 256
    assert props["Timeout"] > MAX_WALL_SECONDS


def test_only_the_node_running_tasks_may_invoke_the_code_sandbox(synth: Synth) -> None:
    sandbox = synth.function(CODE)
    # Workflow branches and items, and chat (a chatflow agent's turn runs its nodes, ADR 0037).
    for name in ("workflow-branch", "workflow-items", "chat"):
        grants = [(action, resource) for action, resource in _grants(synth, name) if action.startswith("lambda:")]
        # The sandbox, by its own ARN (the fetch function is the other one they may invoke); from
        # the chat domain's stack, as the workflows stack passes it down.
        assert any(action == "lambda:InvokeFunction" and points_at(resource, sandbox.logical_id, "WorkflowCode")
                   for action, resource in grants), name
        assert {action for action, _ in grants} == {"lambda:InvokeFunction"}, name
        told = ref_logical_id(synth.function(name).env["WORKFLOW_CODE_FUNCTION_NAME"])
        assert told == sandbox.logical_id or "WorkflowCode" in str(told), name
    # No one else: no other role may invoke it, and no resource policy (URL, event source, trigger) exposes it.
    owners = synth.role_owners()
    invokers = {owners.get((stack, role), role) for stack, role, statement in synth.role_statements()
                if any(a.startswith("lambda:Invoke") for a in as_list(statement["Action"]))
                and (sandbox.logical_id in json.dumps(statement["Resource"])
                     or any(points_at(r, sandbox.logical_id, "WorkflowCode") for r in as_list(statement["Resource"])))}
    assert invokers == {"workflow-branch", "workflow-items", "chat"}
    permissions = [p for _, _, p in synth.resources("AWS::Lambda::Permission")
                   if sandbox.logical_id in json.dumps(p["Properties"]["FunctionName"])]
    mappings = [m for _, _, m in synth.resources("AWS::Lambda::EventSourceMapping")
                if sandbox.logical_id in json.dumps(m["Properties"]["FunctionName"])]
    assert not permissions and not mappings
