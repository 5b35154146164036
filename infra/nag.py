"""cdk-nag (AwsSolutions) on every synth, and every acknowledged finding with its reason.

cdk-nag 3 is a CDK policy-validation plugin: it runs after synthesis, an unacknowledged
error fails ``app.synth()``, and findings are written to the assembly's validation report.
A finding is acknowledged with ``Validations.of(construct).acknowledge`` on the construct
or an ancestor, by exact id: ``AwsSolutions-IAM5[Resource::*]`` names one finding, never
the whole rule (cdk-nag 3 has no prefix matching, which suits the policy).

Policy (docs/adr/0015-cdk-nag-acknowledgments.md): acknowledge on the narrowest construct,
name the exact finding, and say why the finding does not apply or what compensates. No
stack-wide acknowledgments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from cdk_nag import AwsSolutionsChecks
from constructs import Construct, IConstruct

if TYPE_CHECKING:
    from infra.stratus_stack import StratusStack

PLUGIN_NAME = "AwsSolutions"


def apply_checks(scope: Construct) -> AwsSolutionsChecks:
    # The CloudFormation metadata copy keeps every acknowledgment visible in the template
    # itself (cdk_nag.rules_to_suppress), where reviewers and audit tooling look.
    checks = AwsSolutionsChecks(scope, verbose=True, write_suppressions_to_cloud_formation=True)
    Validations.of(scope).add_plugins(checks)
    return checks


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


def logical_id(resource: IConstruct) -> str:
    """The logical id of a construct's CloudFormation resource, as cdk-nag prints it."""
    cfn = resource.node.default_child if not isinstance(resource, CfnResource) else resource
    assert isinstance(cfn, CfnResource)
    return str(Stack.of(cfn).resolve(cfn.logical_id))


def function_role_wildcards(role: Construct, *, in_vpc: bool) -> None:
    reasons = ["X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) have no resource-level permissions"]
    if in_vpc:
        reasons.append("Lambda's ENI management actions (ec2:*NetworkInterface*, ec2:DescribeSubnets) have "
                       "no resource-level permissions")
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "; ".join(reasons))


def bucket_objects(role: IConstruct, resource_finding: str, bucket: str, actions: list[str]) -> None:
    acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource_finding}]",
                f"object-level actions {actions} on the keys of the one {bucket} bucket the catalog grants")


def public_route(route: Construct, route_key: str) -> None:
    acknowledge(route, "AwsSolutions-APIG4",
                f"{route_key} is public by design in functions/catalog.py (auth=False or $default): "
                "it serves no tenant data")


def provider_framework(provider: cr.Provider, handler: lambda_.IFunction) -> None:
    """The CDK custom-resource Provider's own framework function (not our code)."""
    acknowledge(provider,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "the CDK Provider framework function uses AWSLambdaBasicExecutionRole for its own logs")
    acknowledge(provider, f"AwsSolutions-IAM5[Resource::<{logical_id(handler)}.Arn>:*]",
                "the CDK Provider framework may invoke any version of the one migration function "
                "(<fn>:* is that function's versions, not other functions)")
    acknowledge(provider, "AwsSolutions-L1",
                "the CDK Provider framework function's Node.js runtime is chosen by aws-cdk-lib, not by us")


def state_machine_role(machine: sfn.StateMachine) -> None:
    acknowledge(machine, "AwsSolutions-IAM5[Resource::*]",
                "Step Functions log delivery (logs:*LogDelivery*, logs:DescribeLogGroups, ...) and X-Ray "
                "tracing actions support no resource-level permissions")


def python_runtime(function: lambda_.Function) -> None:
    acknowledge(function, "AwsSolutions-L1",
                "python3.12 is the runtime every dependency layer is built for (cp312 wheels); moving is a "
                "deliberate, tested change (docs/adr/0010-lambda-runtime-and-architecture.md)")


def root_stack(stack: StratusStack) -> None:
    data = stack.data
    acknowledge(data.access_logs, "AwsSolutions-S1",
                "this bucket is the server access log target; logging it to itself would loop")
    acknowledge(data.cluster, "AwsSolutions-RDS11",
                "clients reach PostgreSQL only through RDS Proxy (endpoint port fixed at 5432) and the migration "
                "function, from private subnets and named security groups: another port would hide nothing")
    if not stack.config.deletion_protection:
        acknowledge(data.cluster, "AwsSolutions-RDS10",
                    f"deletion protection turned off by context for the throwaway stage {stack.config.stage!r}")
    # The owner secret's resource sits under the cluster (Cluster/Secret), not under the
    # attachment that cluster.secret returns.
    for secret in (data.cluster, data.app_secret, data.admin_token):
        acknowledge(secret, "AwsSolutions-SMG4",
                    "no rotation yet: a rotated owner/app password must be re-set on the role and a rotated admin "
                    "token re-hashed by the migration function (docs/adr/0013-custom-resource-migrations.md)")
