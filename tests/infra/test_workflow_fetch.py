"""The fetch function as deployed: outside the VPC, a role that only logs, no secrets or data
stores in its environment, the deployment's egress allow-list when there is one; invoked
directly by the workflow functions, which may invoke it and nothing else of Lambda's."""

from __future__ import annotations

from typing import Any

import pytest

from functions import catalog
from infra.config import StratusConfig
from infra.functions import _base_environment
from shared.catalog import invoke
from tests.infra.support import Synth, as_list, points_at, ref_logical_id, statements

FETCH = "workflow-fetch"
# HTTP-request nodes run as branches (shared/workflows/engine/graph.py MODES), or as children of
# a long iteration's items (docs/adr/0038).
# The functions that run nodes: workflow branches and items, and chat (a chatflow agent's turn, ADR 0037);
# and the tools API's test calls (OpenAPI tools and web_fetch, docs/tools.md).
CALLERS = ("workflow-branch", "workflow-items", "chat", "tools-test")
# What every role gets for its own log group and X-Ray (tracing is on everywhere).
LOGS_AND_TRACES = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords", "xray:PutTraceSegments"}


def _grants(synth: Synth, function: str) -> list[tuple[str, Any]]:
    deployed = synth.function(function)
    role = ref_logical_id(deployed.props["Role"])
    return [(action, resource)
            for policy in synth.templates[deployed.stack].find_resources("AWS::IAM::Policy").values()
            if role in [ref_logical_id(r) for r in policy["Properties"]["Roles"]]
            for s in statements(policy) for action in as_list(s["Action"]) for resource in as_list(s["Resource"])]


def test_the_fetch_function_runs_outside_the_vpc_with_a_role_that_only_logs(synth: Synth) -> None:
    deployed = synth.function(FETCH)
    assert "VpcConfig" not in deployed.props
    grants = _grants(synth, FETCH)
    assert {action for action, _ in grants} == LOGS_AND_TRACES
    logs = [resource for action, resource in grants if action.startswith("logs:")]
    assert logs and all(ref_logical_id(resource) == ref_logical_id(deployed.props["LoggingConfig"]["LogGroup"])
                        for resource in logs), "its own log group only"
    # No managed policies either (AWSLambdaBasicExecutionRole would log anywhere).
    role = ref_logical_id(deployed.props["Role"])
    assert role is not None
    roles = synth.templates[deployed.stack].find_resources("AWS::IAM::Role")
    assert not roles[role]["Properties"].get("ManagedPolicyArns")


def test_the_fetch_function_holds_no_secret_or_data_store_settings(synth: Synth) -> None:
    env = synth.function(FETCH).env
    assert not [name for name in env if name.endswith(("_SECRET_ARN", "_BUCKET", "_QUEUE_URL", "_STATE_MACHINE_ARN",
                                                       "_KMS_KEY_ID", "_FUNCTION_NAME"))]
    assert not {"DATABASE_HOST", "DATABASE_URL", "REDIS_URL", "OPENSEARCH_URL"} & set(env)
    # The shipped default allows nothing beyond public addresses.
    assert "STRATUS_EGRESS_ALLOW" not in env
    entry = catalog.by_name()[FETCH]
    assert entry.access == () and isinstance(entry.trigger, catalog.Invoked)


def test_the_workflow_functions_may_invoke_it_and_are_told_its_name(synth: Synth) -> None:
    fetch = synth.function(FETCH)
    for caller in CALLERS:
        lambda_grants = [(action, resource) for action, resource in _grants(synth, caller)
                         if action.startswith("lambda:")]
        # The unqualified ARN of this one function: no other function, no versions (":*").
        # The unqualified ARN of this one function (the code sandbox is the other one they invoke).
        assert any(action == "lambda:InvokeFunction" and points_at(resource, fetch.logical_id, "WorkflowFetch")
                   for action, resource in lambda_grants), caller
        assert all(resource != "*" and not str(resource).endswith(":*") for _, resource in lambda_grants), caller
        name = synth.function(caller).env["WORKFLOW_FETCH_FUNCTION_NAME"]
        assert name == {"Ref": fetch.logical_id} or "WorkflowFetch" in str(ref_logical_id(name)), caller


def test_no_other_role_may_invoke_it(synth: Synth) -> None:
    fetch = synth.function(FETCH)
    owners = synth.role_owners()
    invokers = {owners.get((stack, role), role) for stack, role, statement in synth.role_statements()
                if "lambda:InvokeFunction" in as_list(statement["Action"])
                and any(points_at(r, fetch.logical_id, "WorkflowFetch") for r in as_list(statement["Resource"]))}
    assert invokers == set(CALLERS)
    assert {fn.name for fn in catalog.FUNCTIONS if invoke(FETCH) in fn.access} == set(CALLERS)


def test_the_deployments_allow_list_reaches_every_function() -> None:
    entry = catalog.by_name()[FETCH]
    assert "STRATUS_EGRESS_ALLOW" not in _base_environment(entry, StratusConfig())
    config = StratusConfig(egress_allow="10.20.0.0/16,intranet.example.com")
    assert _base_environment(entry, config)["STRATUS_EGRESS_ALLOW"] == "10.20.0.0/16,intranet.example.com"
    with pytest.raises(ValueError, match="egress_allow: STRATUS_EGRESS_ALLOW: 'not a host!'"):
        StratusConfig(egress_allow="10.0.0.0/8,not a host!")
