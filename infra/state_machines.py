"""Standard state machines from the catalog's ``STATE_MACHINES``.

The ASL comes from a ``module:function`` returning a dict in which Lambda ARNs are
``${fn:<function name>}`` placeholders (the local runtime fills the same placeholders). CDK
turns each into a ``DefinitionSubstitutions`` entry, so the definition stays plain JSON.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.catalog import StateMachineSpec
from infra import nag
from infra.functions import Shared, construct_id
from infra.observability import FIVE_MINUTES, alarm

PLACEHOLDER = re.compile(r"\$\{fn:([^}]+)\}")


def load_definition(spec: StateMachineSpec) -> dict[str, Any]:
    module_name, _, attribute = spec.definition.partition(":")
    definition = getattr(importlib.import_module(module_name), attribute)()
    if not isinstance(definition, dict):
        raise TypeError(f"{spec.definition} must return the ASL as a dict")
    return definition


def substitution_key(function_name: str) -> str:
    """``purge-table`` → ``fn_purge_table``: DefinitionSubstitutions keys stay alphanumeric."""
    return "fn_" + re.sub(r"[^A-Za-z0-9]", "_", function_name)


def referenced_functions(spec: StateMachineSpec) -> set[str]:
    return set(PLACEHOLDER.findall(json.dumps(load_definition(spec))))


def build_state_machine(scope: Construct, spec: StateMachineSpec, functions: Mapping[str, lambda_.IFunction],
                        shared: Shared) -> sfn.StateMachine:
    text = json.dumps(load_definition(spec))
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
    machine = sfn.StateMachine(
        scope, cid,
        state_machine_type=sfn.StateMachineType.STANDARD,
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
    nag.state_machine_role(machine)
    alarm(scope, f"{cid}Failed", metric=machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"),
          threshold=1, description=f"Stratus {config.stage}: state machine {spec.name} executions failed",
          topic=shared.alarms)
    alarm(scope, f"{cid}TimedOut", metric=machine.metric_timed_out(period=FIVE_MINUTES, statistic="Sum"),
          threshold=1, description=f"Stratus {config.stage}: state machine {spec.name} executions timed out",
          topic=shared.alarms)
    return machine
