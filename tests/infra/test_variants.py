"""A second synthesis exercising what the shipped catalog does not (yet): authorizer
caching turned off, bucket and secret grants on a function outside the VPC, every state
machine action (stop, describe, signal), and a Distributed Map machine with its child
executions and an S3 item reader. It shows the factory handles them, least-privilege and
cdk-nag clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions import catalog
from infra.config import StratusConfig
from shared import catalog as schema
from shared.stepfunctions import asl
from shared.stepfunctions.policies import lambda_retries
from tests.infra.support import Synth, as_list, ref_logical_id, render, statements, synthesize

PROBE = catalog.Function(
    "probe-uploads", "functions.platform.health", "platform",
    catalog.Http("GET", "/api/v1/probe", permission="tenant:read"),
    access=(schema.bucket("uploads", "read", "write", "delete"), schema.bucket("payloads", "read"),
            schema.secret("admin-token")),
    in_vpc=False,
)


# A Distributed Map over the items of a JSON file in the payloads bucket.
ITEMS = catalog.StateMachineSpec("probe-items", "platform", "tests.infra.test_variants:items_definition",
                                 access=(schema.CHILD_EXECUTIONS, schema.bucket("payloads", "read")))
ITEM = catalog.Function("probe-item", "functions.platform.health", "platform", catalog.StepFunctionsTask(ITEMS.name),
                        in_vpc=False)
# Starts, stops, describes and signals another machine's executions.
CONTROLLER = catalog.Function(
    "probe-controller", "functions.platform.health", "platform", catalog.Schedule("rate(1 day)"), in_vpc=False,
    access=(schema.state_machine("purge", "start", "stop", "describe", "signal"),))


def items_definition() -> dict[str, Any]:
    processor = asl.machine(asl.chain(("Item", asl.lambda_task(ITEM.name, retry_policy=lambda_retries()))))
    return asl.machine(asl.chain(("Items", asl.distributed_map(
        processor, item_reader=asl.s3_json_items(bucket_path="$.bucket", key_path="$.key"), max_concurrency=10,
        result_path=asl.DISCARD))))


@pytest.fixture(scope="module")
def variant(layer_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(catalog, "FUNCTIONS", (*catalog.FUNCTIONS, PROBE, ITEM, CONTROLLER))
        patch.setattr(catalog, "STATE_MACHINES", (*catalog.STATE_MACHINES, ITEMS))
        result = synthesize(tmp_path_factory.mktemp("cdk.out.variant"),
                            {"authorizer_cache_ttl_s": "0", "stage": "test"})
    yield result


def test_ttl_zero_drops_the_identity_source_so_the_authorizer_always_runs(variant: Synth) -> None:
    ((_, _, authorizer),) = variant.resources("AWS::ApiGatewayV2::Authorizer")
    props = authorizer["Properties"]
    assert props["AuthorizerResultTtlInSeconds"] == 0
    assert "IdentitySource" not in props
    assert variant.function("health").env["AUTHORIZER_CACHE_TTL_S"] == "0"


def test_bucket_and_secret_grants_are_explicit_and_scoped(variant: Synth) -> None:
    probe = variant.function(PROBE.name)
    assert "VpcConfig" not in probe.props
    env = probe.env
    assert ref_logical_id(env["UPLOADS_BUCKET"]) and ref_logical_id(env["PAYLOADS_BUCKET"])
    assert ref_logical_id(env["ADMIN_TOKEN_SECRET_ARN"])
    role = ref_logical_id(probe.props["Role"])
    template = variant.templates[probe.stack]
    policies = [p for p in template.find_resources("AWS::IAM::Policy").values()
                if role in [ref_logical_id(r) for r in p["Properties"]["Roles"]]]
    granted = {(action, str(resource)) for p in policies for s in statements(p)
               for action in as_list(s["Action"]) for resource in as_list(s["Resource"])}
    actions = {action for action, _ in granted}
    assert {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:ListBucket",
            "secretsmanager:GetSecretValue"} <= actions
    assert not any(a.startswith("ec2:") for a in actions), "no ENI rights outside the VPC"
    # Object actions on <bucket>/* through the nested stack's named parameters.
    assert any(action == "s3:GetObject" and "PayloadsBucketArn" in resource and "/*" in resource
               for action, resource in granted)
    assert not any(action == "s3:PutObject" and "PayloadsBucketArn" in resource for action, resource in granted)
    assert {"UploadsBucketArn", "PayloadsBucketArn"} <= set(template.to_json()["Parameters"])


def _shown(resource: Any) -> str:
    try:
        return render(resource)
    except ValueError:  # a Fn::GetAtt (log groups, functions): not what these tests look at
        return str(resource)


def _role_grants(template: Any, role: str | None) -> list[tuple[str, str]]:
    return [(action, _shown(resource))
            for p in template.find_resources("AWS::IAM::Policy").values()
            if role in [ref_logical_id(r) for r in p["Properties"]["Roles"]]
            for s in statements(p) for action in as_list(s["Action"]) for resource in as_list(s["Resource"])]


def test_state_machine_actions_are_scoped_to_one_machine_and_its_executions(variant: Synth) -> None:
    controller = variant.function(CONTROLLER.name)
    grants = [(a, r) for a, r in _role_grants(variant.templates[controller.stack],
                                              ref_logical_id(controller.props["Role"])) if a.startswith("states:")]
    on_machine = {a for a, r in grants if ":stateMachine:" in r or r.startswith("<")}
    on_executions = {a for a, r in grants if ":execution:" in r}
    assert on_machine == {"states:StartExecution", "states:SendTaskSuccess", "states:SendTaskFailure",
                          "states:SendTaskHeartbeat"}
    assert on_executions == {"states:StopExecution", "states:DescribeExecution", "states:GetExecutionHistory"}
    assert all(r.endswith(":*") for a, r in grants if ":execution:" in r)
    assert "*" not in {r for _, r in grants}
    assert "PURGE_STATE_MACHINE_ARN" in controller.env


def test_a_distributed_map_machine_may_start_its_own_children_and_read_its_items(variant: Synth) -> None:
    machines = variant.templates["platform"].find_resources("AWS::StepFunctions::StateMachine")
    (machine,) = [m for i, m in machines.items() if i.startswith("ProbeItemsStateMachine")]
    name = machine["Properties"]["StateMachineName"]
    assert name.endswith("-probe-items"), "named: the machine's own policy names its ARN"
    grants = _role_grants(variant.templates["platform"], ref_logical_id(machine["Properties"]["RoleArn"]))
    prefix = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>"
    assert ("states:StartExecution", f"{prefix}:stateMachine:{name}") in grants
    assert ("states:DescribeExecution", f"{prefix}:execution:{name}/*") in grants
    assert ("states:StopExecution", f"{prefix}:execution:{name}/*") in grants
    assert any(a == "s3:GetObject" and "PayloadsBucketArn" in r and r.endswith("/*") for a, r in grants)
    assert not any(a in ("s3:PutObject", "s3:DeleteObject") for a, _ in grants)
    assert any(a == "lambda:InvokeFunction" for a, _ in grants)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        StratusConfig(stage="Prod!")
    with pytest.raises(ValueError):
        StratusConfig(authorizer_cache_ttl_s=7200)
    with pytest.raises(ValueError):
        StratusConfig(log_retention_days=31)
