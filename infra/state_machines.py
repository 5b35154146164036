"""State machines from the catalog's ``STATE_MACHINES``.

The ASL comes from a ``module:function`` built with shared.stepfunctions.asl, in which Lambda
ARNs are ``${fn:<function name>}`` placeholders (the local runtime fills the same
placeholders). CDK turns each into a ``DefinitionSubstitutions`` entry, so the definition
stays plain JSON. The machine's role may invoke exactly its task functions, plus what its
catalog ``access`` names (its own child executions, an item reader's bucket).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions import catalog
from functions.catalog import StateMachineSpec
from infra import nag
from infra.functions import Shared, construct_id, grant_bucket_objects, states_arn
from infra.observability import FIVE_MINUTES, alarm
from shared.stepfunctions.definitions import PLACEHOLDER, load_definition, waits_for_task_tokens
from shared.stepfunctions.definitions import referenced_functions as referenced_functions

_TYPES = {"STANDARD": sfn.StateMachineType.STANDARD, "EXPRESS": sfn.StateMachineType.EXPRESS}
# An execution's TimeoutSeconds when the catalog gives none; and the most each type allows
# (a Standard execution lasts at most a year, an Express one five minutes).
DEFAULT_TIMEOUT_S = {"STANDARD": 24 * 3600, "EXPRESS": 300}
MAX_TIMEOUT_S = {"STANDARD": 365 * 24 * 3600, "EXPRESS": 300}


def execution_timeout_s(spec: StateMachineSpec) -> int:
    timeout = spec.timeout_s if spec.timeout_s is not None else DEFAULT_TIMEOUT_S[spec.type]
    if not 1 <= timeout <= MAX_TIMEOUT_S[spec.type]:
        raise ValueError(f"state machine {spec.name!r}: timeout_s must be within 1..{MAX_TIMEOUT_S[spec.type]} "
                         f"for {spec.type}, got {timeout}")
    return timeout
# A machine's own child executions (Distributed Map): what CHILD_EXECUTIONS grants.
_CHILD_EXECUTION_ACTIONS = {"start": ("states:StartExecution",),
                            "describe": ("states:DescribeExecution",),
                            "stop": ("states:StopExecution",)}


@dataclass(frozen=True)
class MachineRef:
    """A deployed state machine as grants name it. For a machine that its own tasks reach (or
    that starts its own child executions) the ARN is built from its fixed name, not taken from
    the resource: a reference would make the machine, its task functions and their roles
    depend on each other."""

    machine: sfn.StateMachine
    arn: str
    # The machine's name: a literal when fixed, else a reference to the resource's Name.
    name: str


def substitution_key(function_name: str) -> str:
    """``purge-table`` → ``fn_purge_table``: DefinitionSubstitutions keys stay alphanumeric."""
    return "fn_" + re.sub(r"[^A-Za-z0-9]", "_", function_name)


def physical_name(spec: StateMachineSpec, prefix: str) -> str:
    return f"{prefix}-{spec.name}"


def reaches_itself(spec: StateMachineSpec) -> bool:
    """The machine's own tasks (or the machine, for child executions) need its ARN."""
    if any(access.kind == "child_executions" for access in spec.access):
        return True
    tasks = referenced_functions(spec)
    return any(access.kind == "state_machine" and access.name == spec.name
               for fn in catalog.FUNCTIONS if fn.name in tasks for access in fn.access)


def _reference(scope: Construct, machine: sfn.StateMachine, fixed_name: str | None) -> MachineRef:
    if fixed_name is None:
        return MachineRef(machine=machine, arn=machine.state_machine_arn, name=machine.state_machine_name)
    return MachineRef(machine=machine, arn=states_arn(scope, "stateMachine", fixed_name), name=fixed_name)


def validate_spec(spec: StateMachineSpec) -> None:
    if spec.type not in _TYPES:
        raise ValueError(f"state machine {spec.name!r}: type must be one of {sorted(_TYPES)}")
    if spec.type == "EXPRESS" and waits_for_task_tokens(load_definition(spec)):
        raise ValueError(f"state machine {spec.name!r}: .waitForTaskToken needs a STANDARD machine")
    for access in spec.access:
        if access.kind == "child_executions":
            unknown = set(access.actions) - set(_CHILD_EXECUTION_ACTIONS)
            if unknown or not access.actions:
                raise ValueError(f"state machine {spec.name!r}: child execution actions must be among "
                                 f"{sorted(_CHILD_EXECUTION_ACTIONS)}")
        elif access.kind == "bucket":
            if set(access.actions) != {"read"}:
                raise ValueError(f"state machine {spec.name!r}: an item reader only reads its bucket")
        else:
            raise ValueError(f"state machine {spec.name!r}: unsupported access {access.resource!r} "
                             "(child_executions, bucket:<name> read)")


def build_state_machine(scope: Construct, spec: StateMachineSpec, functions: Mapping[str, lambda_.IFunction],
                        shared: Shared) -> MachineRef:
    validate_spec(spec)
    definition = load_definition(spec)
    # A stuck execution ends (failed, TimedOut alarm) instead of running until the type's limit.
    definition["TimeoutSeconds"] = execution_timeout_s(spec)
    text = json.dumps(definition)
    names = sorted(set(PLACEHOLDER.findall(text)))
    missing = [name for name in names if name not in functions]
    if missing:
        raise ValueError(f"state machine {spec.name!r} references unknown functions {missing}")
    keys = {name: substitution_key(name) for name in names}
    if len(set(keys.values())) != len(keys):
        raise ValueError(f"state machine {spec.name!r}: function names collide once sanitised: {keys}")
    text = PLACEHOLDER.sub(lambda m: "${" + keys[m.group(1)] + "}", text)

    cid = construct_id(spec.name) + "StateMachine"
    config = shared.config
    # /aws/vendedlogs/ keeps Step Functions' log delivery out of the account's size-limited
    # CloudWatch Logs resource policy.
    log_group = logs.LogGroup(scope, f"{cid}Logs", retention=config.log_retention,
                              log_group_name=f"/aws/vendedlogs/states/{config.prefix}-{spec.name}",
                              removal_policy=RemovalPolicy.DESTROY)
    named = reaches_itself(spec)
    machine = sfn.StateMachine(
        scope, cid,
        state_machine_name=physical_name(spec, config.prefix) if named else None,
        state_machine_type=_TYPES[spec.type],
        definition_body=sfn.DefinitionBody.from_string(text),
        definition_substitutions={keys[name]: functions[name].function_arn for name in names},
        comment=spec.description or None,
        # The state carries identifiers only (docs/architecture.md §6.3), so execution data is safe to log.
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        tracing_enabled=True,
    )
    # Exactly the task functions, unqualified ARNs as the ASL names them (no ":*" versions).
    for name in names:
        machine.add_to_role_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"],
                                                       resources=[functions[name].function_arn]))
    ref = _reference(scope, machine, physical_name(spec, config.prefix) if named else None)
    _grant_own_access(ref, spec, shared)
    nag.state_machine_role(machine)
    alarm(scope, f"{cid}Failed", metric=machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"),
          threshold=1, description=f"Stratus {config.stage}: state machine {spec.name} executions failed",
          topic=shared.alarms)
    alarm(scope, f"{cid}TimedOut", metric=machine.metric_timed_out(period=FIVE_MINUTES, statistic="Sum"),
          threshold=1, description=f"Stratus {config.stage}: state machine {spec.name} executions timed out",
          topic=shared.alarms)
    return ref


def _grant_own_access(ref: MachineRef, spec: StateMachineSpec, shared: Shared) -> None:
    """The machine's catalog access: its child executions (on its own ARN and its executions
    only) and its item readers' buckets (GetObject on that bucket's objects only)."""
    machine = ref.machine
    for access in spec.access:
        if access.kind == "child_executions":
            if "start" in access.actions:
                machine.add_to_role_policy(iam.PolicyStatement(actions=["states:StartExecution"],
                                                               resources=[ref.arn]))
            on_children = sorted({a for action in access.actions if action != "start"
                                  for a in _CHILD_EXECUTION_ACTIONS[action]})
            if on_children:
                # A Distributed Map's children: arn:...:execution:<machine>/<map run>:<id>.
                children = states_arn(machine, "execution", f"{ref.name}/*")
                machine.add_to_role_policy(iam.PolicyStatement(actions=on_children, resources=[children]))
                nag.own_executions(machine.role, nag.rendered(machine, children), on_children, spec.name)
        elif access.kind == "bucket":
            grant_bucket_objects(machine.role, machine, f"state machine {spec.name}", access.name, ("read",),
                                 shared.data, prefix=access.prefix)
