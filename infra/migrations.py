"""The database schema at deploy time (docs/adr/0013, docs/adr/0048): the migration custom
resource, the order every domain stack waits for, and the cluster's deletion protection
turned on once the whole stack exists."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import jsii
from aws_cdk import CfnResource, CustomResource, Duration, IStableStringProducer, Lazy, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from functions import catalog
from infra import nag
from infra.packaging import migrations_hash

if TYPE_CHECKING:
    from infra.data import Data
    from infra.functions import Shared

# The waiter polls isComplete this often; every poll applies the pending migrations that fit
# in that invocation (functions/platform/db_migrate.py).
QUERY_INTERVAL = Duration.seconds(30)
# How long the whole series of migrations may take before the deploy fails (the Provider
# framework's maximum is two hours).
TOTAL_TIMEOUT = Duration.hours(2)
# The properties the function reads (functions/platform/db_migrate.py SECRET_PROPERTIES).
HASH_PROPERTY = "MigrationsHash"


def deploy_domains() -> set[str]:
    """Domains holding a Deploy function (the migration). They may hold nothing else: every
    other function must come up after the schema, and so in another stack."""
    domains = {fn.domain for fn in catalog.FUNCTIONS if isinstance(fn.trigger, catalog.Deploy)}
    for fn in catalog.FUNCTIONS:
        if fn.domain in domains and not isinstance(fn.trigger, catalog.Deploy):
            raise ValueError(f"{fn.name}: the {fn.domain} domain holds the migration, which every other stack waits "
                             "for; put this function in another domain")
    for spec in catalog.STATE_MACHINES:
        if spec.domain in domains:
            raise ValueError(f"state machine {spec.name}: the {spec.domain} domain holds only the migration")
    return domains


def migration_resource(scope: Construct, cid: str, function: lambda_.Function, fn: catalog.Function,
                       shared: Shared) -> CustomResource:
    """The custom resource that migrates the schema: onEvent decides (a rollback is a no-op),
    the waiter's isComplete polls do the work in as many invocations as they need."""
    config = shared.config
    data = shared.data
    provider_logs = logs.LogGroup(scope, f"{cid}ProviderLogs", retention=config.log_retention,
                                  removal_policy=RemovalPolicy.DESTROY)
    waiter_logs = logs.LogGroup(scope, f"{cid}WaiterLogs", retention=config.log_retention,
                                log_group_name=f"/aws/vendedlogs/states/{config.prefix}-{fn.name}-waiter",
                                removal_policy=RemovalPolicy.DESTROY)
    provider = cr.Provider(
        scope, f"{cid}Provider", on_event_handler=function, is_complete_handler=function,
        query_interval=QUERY_INTERVAL, total_timeout=TOTAL_TIMEOUT, log_group=provider_logs,
        waiter_state_machine_log_options=cr.LogOptions(destination=waiter_logs, level=sfn.LogLevel.ALL,
                                                       include_execution_data=False))
    nag.provider_framework(provider, function, waiter=True)
    resource = CustomResource(
        scope, f"{cid}Resource",
        service_token=provider.service_token,
        resource_type=f"Custom::Stratus{cid}",
        properties={
            # A changed or added migration file changes this property, and CloudFormation
            # then sends an Update: the function runs again exactly when there is work. A
            # rollback sends the previous hash, which the function recognises and skips.
            HASH_PROPERTY: migrations_hash(),
            # A replaced secret changes its ARN, and so sends an Update that installs the new
            # password (or admin token) although no migration changed.
            "AdminSecretArn": data.owner_secret.secret_arn,
            "AppSecretArn": data.app_secret.secret_arn,
            "AdminTokenSecretArn": data.admin_token.secret_arn,
            "Function": fn.name,
        },
    )
    # The cluster (writer instance included) must be up before migrations connect.
    resource.node.add_dependency(data.cluster)
    return resource


# The custom resource's property carrying the digest of the cluster's template properties.
CLUSTER_DIGEST_PROPERTY = "ClusterPropertiesDigest"


@jsii.implements(IStableStringProducer)
class _ClusterDigest:
    """A digest of the cluster's CloudFormation properties, computed at synth. CloudFormation's
    AWS::RDS::DBCluster update handler sends the template's DeletionProtection (false: infra/data.py)
    with every ModifyDBCluster, so any change to the cluster resource turns protection off: the
    digest changes with it, and the custom resource (after the cluster) turns it back on."""

    def __init__(self, cluster: rds.DatabaseCluster) -> None:
        cfn = cluster.node.default_child
        assert isinstance(cfn, CfnResource)
        self._cfn = cfn

    def produce(self) -> str:
        cfn = self._cfn
        rendered = cfn._render_properties(Stack.of(cfn).resolve(cfn._cfn_properties))
        return hashlib.sha256(json.dumps(rendered, sort_keys=True).encode()).hexdigest()


def protect_cluster(stack: Stack, data: Data, *, enabled: bool, retention: logs.RetentionDays) -> None:
    """Set the cluster's deletion protection once every other resource of ``stack`` exists:
    call it last. The cluster is created without it, so a first deploy that fails anywhere
    rolls back (and deletes the new, empty cluster) instead of sticking in ROLLBACK_FAILED;
    from the first complete deploy on, the profile's ``deletion_protection`` holds, and is set
    again after any update of the cluster resource (``_ClusterDigest``)."""
    identifier = data.cluster.cluster_identifier
    call = cr.AwsSdkCall(
        service="RDS", action="modifyDBCluster",
        parameters={"DBClusterIdentifier": identifier, "DeletionProtection": enabled, "ApplyImmediately": True},
        physical_resource_id=cr.PhysicalResourceId.of(f"{identifier}-deletion-protection"),
        output_paths=["DBCluster.DeletionProtection"],
    )
    provider_logs = logs.LogGroup(stack, "ClusterDeletionProtectionLogs", retention=retention,
                                  removal_policy=RemovalPolicy.DESTROY)
    # No on_delete: removing this resource never lowers the protection (a stack deletion is
    # refused by the cluster until a deploy with deletion_protection false has run).
    protection = cr.AwsCustomResource(
        stack, "ClusterDeletionProtection",
        resource_type="Custom::StratusClusterDeletionProtection",
        on_create=call, on_update=call,
        policy=cr.AwsCustomResourcePolicy.from_statements([
            iam.PolicyStatement(actions=["rds:ModifyDBCluster"], resources=[data.cluster.cluster_arn])]),
        log_group=provider_logs,
        install_latest_aws_sdk=False,
    )
    resource = protection.node.find_child("Resource").node.default_child
    assert isinstance(resource, CfnResource)
    resource.add_property_override(CLUSTER_DIGEST_PROPERTY, Lazy.string(_ClusterDigest(data.cluster)))
    # After everything else in the stack (the nested stacks, the edge, the alarms, the
    # dashboard...): a resource that could still fail after protection is on would leave a
    # failed first deploy unable to delete the cluster. Resources under a Condition are left
    # out, so the list never names a resource that may not exist (Edge5xxRate: us-east-1 only).
    for child in stack.node.children:
        if child is protection or _conditional(child):
            continue
        protection.node.add_dependency(child)
    nag.aws_custom_resource(stack)


def _conditional(construct: IConstruct) -> bool:
    child = construct.node.default_child
    return isinstance(child, CfnResource) and child.cfn_options.condition is not None
