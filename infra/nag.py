"""cdk-nag (AwsSolutions) on every synth, and every suppression with its reason.

Policy (docs/adr/0015-cdk-nag-suppressions.md): suppress on the narrowest construct, name
the exact finding (``applies_to``) where the rule supports it, and say why the finding does
not apply or what compensates. No stack-wide blanket suppressions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Aspects, IAspect
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

if TYPE_CHECKING:
    from infra.stratus_stack import StratusStack


def apply_checks(scope: Construct) -> IAspect:
    checks = AwsSolutionsChecks(verbose=True)
    Aspects.of(scope).add(checks)
    return checks


def _suppress(construct: Construct, *suppressions: NagPackSuppression) -> None:
    NagSuppressions.add_resource_suppressions(construct, list(suppressions), apply_to_children=True)


def suppress_public_route(route: Construct, route_key: str) -> None:
    _suppress(route, NagPackSuppression(
        id="AwsSolutions-APIG4",
        reason=(f"{route_key} is public by design in functions/catalog.py (auth=False or $default): "
                "it serves no tenant data")))


def suppress_provider_framework(provider: cr.Provider) -> None:
    """The CDK custom-resource Provider's own framework function (not our code)."""
    _suppress(
        provider,
        NagPackSuppression(
            id="AwsSolutions-IAM4",
            reason="the CDK Provider framework function uses AWSLambdaBasicExecutionRole for its own logs",
            applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]),
        NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason=("the CDK Provider framework may invoke any version of the one migration function "
                    "(<fn>:* is that function's versions, not other functions)"),
            applies_to=[RegexAppliesTo(regex="/^Resource::<.*\\.Arn>:\\*$/")]),
        NagPackSuppression(
            id="AwsSolutions-L1",
            reason="the CDK Provider framework function's Node.js runtime is chosen by aws-cdk-lib, not by us"),
    )


def suppress_state_machine_role(machine: sfn.StateMachine) -> None:
    _suppress(machine, NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=("Step Functions log delivery (logs:*LogDelivery*, logs:DescribeLogGroups, ...) and X-Ray "
                "tracing actions support no resource-level permissions"),
        applies_to=["Resource::*"]))


def suppress_root(stack: StratusStack) -> None:
    data = stack.data
    _suppress(data.access_logs, NagPackSuppression(
        id="AwsSolutions-S1",
        reason="this bucket is the server access log target; logging it to itself would loop"))
    _suppress(data.cluster, NagPackSuppression(
        id="AwsSolutions-RDS11",
        reason=("clients reach PostgreSQL only through RDS Proxy, whose endpoint port is fixed at 5432, from "
                "private subnets and named security groups: a non-default cluster port would hide nothing")))
    if not stack.config.deletion_protection:
        _suppress(data.cluster, NagPackSuppression(
            id="AwsSolutions-RDS10",
            reason=f"deletion protection turned off by context for the throwaway stage {stack.config.stage!r}"))
    for secret in (data.owner_secret, data.app_secret, data.admin_token):
        _suppress(secret, NagPackSuppression(
            id="AwsSolutions-SMG4",
            reason=("rotation needs the migration function to re-set the role password (app and owner) or "
                    "a fresh admin token hash; until that exists rotation would break logins "
                    "(docs/adr/0013-custom-resource-migrations.md)")))
