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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from cdk_nag import AwsSolutionsChecks
from constructs import Construct, IConstruct

if TYPE_CHECKING:
    from infra.config import StratusConfig
    from infra.stratus_stack import StratusStack

# CDK's fixed id of the AwsCustomResource singleton Lambda in a stack.
AWS_CUSTOM_RESOURCE_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"
_BASIC_EXECUTION_ROLE = ("AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                         "AWSLambdaBasicExecutionRole]")

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


def rendered(scope: IConstruct, value: str) -> str:
    """``value`` as cdk-nag prints it in a finding id: literals as they are, a ``Ref`` as
    ``<Name>`` and a ``Fn::GetAtt`` as ``<Logical.Attr>`` (e.g. ``arn:<AWS::Partition>:...``)."""
    def part(item: Any) -> str:
        if isinstance(item, str):
            return item
        if isinstance(item, dict) and "Ref" in item:
            return f"<{item['Ref']}>"
        if isinstance(item, dict) and "Fn::GetAtt" in item:
            return f"<{'.'.join(item['Fn::GetAtt'])}>"
        raise ValueError(f"cannot render {item!r} as a cdk-nag finding")

    resolved = Stack.of(scope).resolve(value)
    if isinstance(resolved, dict) and "Fn::Join" in resolved:
        separator, parts = resolved["Fn::Join"]
        return str(separator).join(part(item) for item in parts)
    return part(resolved)


def function_role_wildcards(role: Construct, *, in_vpc: bool) -> None:
    reasons = ["X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) have no resource-level permissions"]
    if in_vpc:
        reasons.append("Lambda's ENI management actions (ec2:*NetworkInterface*, ec2:DescribeSubnets) have "
                       "no resource-level permissions")
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "; ".join(reasons))


def bucket_objects(role: IConstruct, resource_finding: str, bucket: str, actions: list[str]) -> None:
    acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource_finding}]",
                f"object-level actions {actions} on the keys of the one {bucket} bucket the catalog grants")


def bedrock_models(role: IConstruct, actions: Sequence[str], *, foundation_models: str,
                   inference_profiles: Sequence[str], routed_foundation_models: str) -> None:
    """The ``bedrock`` access: which model a call names is data (the model catalog, tenants'
    models), not code, so the grant is on model families; its actions are invocation only."""
    what = f"invocation only ({', '.join(actions)}; they also authorize Converse and ConverseStream)"
    acknowledge(role, f"AwsSolutions-IAM5[Resource::{rendered(role, foundation_models)}]",
                f"{what} of AWS-owned foundation models in this region: the model is chosen per request from "
                "the model catalog and tenants' models, so no fixed model list exists at deploy time")
    kinds = {"inference-profile": "system-defined (cross-region) inference profiles",
             "application-inference-profile": "application inference profiles"}
    for profiles in inference_profiles:
        finding = rendered(role, profiles)
        kind = kinds[finding.rsplit(":", 1)[-1].split("/", 1)[0]]
        acknowledge(role, f"AwsSolutions-IAM5[Resource::{finding}]",
                    f"{what} of {kind} in this account and region, chosen per request like the models; "
                    "no other account's or region's profiles")
    acknowledge(role, f"AwsSolutions-IAM5[Resource::{rendered(role, routed_foundation_models)}]",
                f"{what} of foundation models in the destination regions of a cross-region inference profile, "
                "which IAM checks as well; a StringLike condition on bedrock:InferenceProfileArn allows it only "
                "for requests routed through this account's inference profiles in this region, never direct")


def public_route(route: Construct, route_key: str) -> None:
    acknowledge(route, "AwsSolutions-APIG4",
                f"{route_key} is public by design in functions/catalog/ (auth=False or $default): "
                "it serves no tenant data")


def public_function_url(url: IConstruct, function: str) -> None:
    """A function URL with ``AuthType: NONE``. No AwsSolutions rule inspects function URLs; the
    Serverless pack's does, and this acknowledgment records the reason with the resource."""
    acknowledge(url, "Serverless-LambdaFunctionUrlAuth",
                f"the {function} function URL is public by design (docs/adr/0028-chat-edge.md): CloudFront sends "
                "the streaming paths to it and the app itself authenticates every request (bearer token, revocation, "
                "the route's permission) with the same shared code as the API's handlers")


def distribution(dist: IConstruct, *, waf: bool = False) -> None:
    """The CloudFront distribution in front of the HTTP API and the function URLs (docs/architecture.md §2.1)."""
    acknowledge(dist, "AwsSolutions-CFR1",
                "no geo restriction: the API serves tenants wherever they are; access is per token, and a "
                "deployment that must restrict countries adds a GeoRestriction to the distribution")
    if not waf:
        acknowledge(dist, "AwsSolutions-CFR2",
                    "no WAF web ACL on this stage (waf / waf_web_acl_arn, docs/adr/0047): a CLOUDFRONT-scope web ACL "
                    "lives in us-east-1; API Gateway throttling, per-tenant rate limits and quotas bound abuse")
    acknowledge(dist, "AwsSolutions-CFR4",
                "the default *.cloudfront.net certificate (no custom domain yet), with which CloudFront cannot "
                "enforce a minimum viewer TLS version; a custom domain brings an ACM certificate and TLSv1.2_2021")


def provider_framework(provider: cr.Provider, handler: lambda_.IFunction, *, waiter: bool = False) -> None:
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
    if not waiter:
        return
    # The isComplete waiter: a Step Functions state machine of aws-cdk-lib's own.
    for part in ("isComplete", "onTimeout"):
        framework = provider.node.find_child(f"framework-{part}")
        acknowledge(provider, f"AwsSolutions-IAM5[Resource::<{logical_id(framework)}.Arn>:*]",
                    f"the Provider framework's waiter may invoke any version of its own {part} function")
    acknowledge(provider, "AwsSolutions-SF1",
                "the Provider framework's waiter logs to its own log group (as aws-cdk-lib renders it); "
                "the migration function logs every step itself")
    acknowledge(provider, "AwsSolutions-SF2",
                "the Provider framework's waiter is aws-cdk-lib's (no tracing option); the migration function is "
                "traced")


def notifications_handler(handler: IConstruct) -> None:
    """CDK's bucket-notifications custom-resource Lambda (not our code)."""
    acknowledge(handler, _BASIC_EXECUTION_ROLE,
                "CDK's bucket-notifications handler (the custom resource that applies S3 -> SQS notifications) "
                "uses AWSLambdaBasicExecutionRole for its own logs")


def aws_custom_resource(stack: Stack) -> None:
    """The singleton Lambda behind CDK's AwsCustomResource (not our code); its policy is ours."""
    provider = stack.node.try_find_child(AWS_CUSTOM_RESOURCE_PROVIDER_ID)
    assert provider is not None, "AwsCustomResource creates its singleton provider in the stack"
    acknowledge(provider, _BASIC_EXECUTION_ROLE,
                "CDK's AwsCustomResource provider (the S3 prefix-list lookup, the cluster's deletion protection, the "
                "OpenSearch access policy) uses "
                "AWSLambdaBasicExecutionRole for its own logs")


def opensearch_domain(domain: opensearch.Domain, config: StratusConfig) -> None:
    acknowledge(domain, "AwsSolutions-OS3",
                "a VPC domain has no public endpoint and OpenSearch does not apply IP-based policies to VPC "
                "domains; the network boundary is its security group (the functions' group only, on 443) and "
                "every request is SigV4-signed by a role the access policy names")
    if not config.opensearch_master_nodes:
        acknowledge(domain, "AwsSolutions-OS4",
                    "no dedicated cluster-manager nodes by default: a small data-node-only vector store; set "
                    "-c opensearch_master_nodes=3 for production clusters (docs/adr/0023)")
    if not config.opensearch_zone_awareness:
        acknowledge(domain, "AwsSolutions-OS7",
                    f"zone awareness turned off by context for stage {config.stage!r} (one data-node zone)")


def opensearch_paths(role: IConstruct, resource_finding: str, actions: list[str]) -> None:
    acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource_finding}]",
                f"HTTP actions {actions} on the paths (indexes, _bulk, _search) of the one OpenSearch domain; index "
                "names are per embedding size and created on first use")


def state_machine_role(machine: sfn.StateMachine) -> None:
    acknowledge(machine, "AwsSolutions-IAM5[Resource::*]",
                "Step Functions log delivery (logs:*LogDelivery*, logs:DescribeLogGroups, ...) and X-Ray "
                "tracing actions support no resource-level permissions")


def executions(role: IConstruct, resource_finding: str, actions: Sequence[str], machine: str) -> None:
    """``state_machine:<name>`` stop/describe: execution ARNs are per run, named by the run id."""
    acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource_finding}]",
                f"{list(actions)} on the executions of the one {machine} state machine (an execution ARN is "
                "<machine>:<execution name>, and execution names are run ids known only at run time)")


def own_executions(role: IConstruct, resource_finding: str, actions: Sequence[str], machine: str) -> None:
    """A Distributed Map's child executions of its own machine."""
    acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource_finding}]",
                f"{list(actions)} on the {machine} state machine's own Distributed Map child executions "
                "(<machine>/<map run>:<id>, created by Step Functions at run time)")


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
    acknowledge(data.cluster, "AwsSolutions-RDS10",
                "created without deletion protection so a failed first deploy can roll back; the "
                "ClusterDeletionProtection custom resource turns it on (profile deletion_protection) once the whole "
                "stack exists (docs/adr/0048-prod-profile-and-safe-migrations.md)")
    # The owner secret's resource sits under the cluster (Cluster/Secret), not under the
    # attachment that cluster.secret returns.
    for secret in (data.cluster, data.app_secret, data.admin_token):
        acknowledge(secret, "AwsSolutions-SMG4",
                    "no rotation yet: a rotated owner/app password must be re-set on the role and a rotated admin "
                    "token re-hashed by the migration function (docs/adr/0013-custom-resource-migrations.md)")
    acknowledge(data.origin_secret, "AwsSolutions-SMG4",
                "the edge's origin secret is copied into CloudFront's origin headers at deploy time (a dynamic "
                "reference): automatic rotation would lock CloudFront out; rotating is a new value (the functions "
                "accept it and the previous one), a deploy naming its version (origin_secret_version), then retiring "
                "the old one (README, docs/adr/0047-concurrency-budget-and-side-doors.md)")
    acknowledge(data.cache_secret, "AwsSolutions-SMG4",
                "the cache user's password is copied into the ElastiCache user at deploy time (a dynamic "
                "reference): automatic rotation would change the secret but not the user, and the functions, "
                "reading the secret, would be refused; a rotation is a follow-up (docs/adr/0048)")
    acknowledge(data.cache_default_secret, "AwsSolutions-SMG4",
                "the password of the cache's disabled default user (access string off -@all): ElastiCache requires "
                "the user and a password for it; nobody may read the secret and the user cannot log in")
    acknowledge(data.provider_keys, "AwsSolutions-SMG4",
                "holds third-party provider API keys (OpenAI, Anthropic) that only the provider can issue: operators "
                "rotate them in the provider's console and put the new value here; a rotation Lambda could not "
                "(docs/adr/0020-model-access-infrastructure.md)")


def dead_letter_queue(queue: IConstruct) -> None:
    acknowledge(queue, "AwsSolutions-SQS3",
                "this queue is itself a dead-letter queue (of EventBridge targets): it needs none of its own")


def describe_only(custom_resource: IConstruct, action: str) -> None:
    """An AwsCustomResource whose one call is a Describe action (no resource-level permissions)."""
    acknowledge(custom_resource, "AwsSolutions-IAM5[Resource::*]",
                f"{action} is a read-only Describe action that supports no resource-level permissions")
