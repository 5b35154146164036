"""The managed OpenSearch domain, when the deployment chose it as the vector store
(``-c vector_store=opensearch``; docs/architecture.md §2.6, docs/adr/0023-ingestion-infrastructure.md).

- In the VPC's private subnets; its security group admits only the functions' group, on 443.
- Encryption at rest, node-to-node encryption, HTTPS only with TLS 1.2 or later.
- Slow search, slow indexing and error (application) logs to CloudWatch Logs groups with the
  stage's retention; the log groups' resource policy is a plain ``AWS::Logs::ResourcePolicy``
  (CDK's default is a custom-resource Lambda).
- Access: requests are SigV4-signed (``es``). The domain's access policy names exactly the
  roles of the catalog functions with ``Access("opensearch")`` (``es:ESHttp*`` on the domain's
  paths), and each of those roles carries the same grant in IAM. The policy names roles of
  the nested domain stacks, which themselves take the domain's endpoint: it is applied after
  them by an ``UpdateDomainConfig`` custom resource, so no template references go both ways.
"""

from __future__ import annotations

from aws_cdk import Aws, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import nag
from infra.config import StratusConfig
from infra.network import Network

HTTPS = 443
# Catalog "opensearch" actions → the data-plane actions. Searches and bulk writes are POSTs.
OPENSEARCH_ACTIONS: dict[str, tuple[str, ...]] = {
    "read": ("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"),
    "write": ("es:ESHttpPut", "es:ESHttpPost", "es:ESHttpDelete"),
}
ALL_HTTP_ACTIONS = sorted({a for actions in OPENSEARCH_ACTIONS.values() for a in actions})
# The request signing service the functions use (shared.config opensearch_sigv4_service).
SIGV4_SERVICE = "es"


class OpenSearchDomain(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig, network: Network) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.security_group = ec2.SecurityGroup(
            self, "Sg", vpc=network.vpc, allow_all_outbound=False,
            description="OpenSearch domain (vector store), HTTPS from Stratus functions only")
        self.security_group.add_ingress_rule(network.functions_sg, ec2.Port.tcp(HTTPS),
                                             "Stratus functions to OpenSearch (HTTPS)")
        network.functions_sg.add_egress_rule(self.security_group, ec2.Port.tcp(HTTPS),
                                             "Stratus functions to OpenSearch (HTTPS)")
        log_groups = {
            kind: logs.LogGroup(self, f"{kind}Logs", retention=config.log_retention,
                                removal_policy=RemovalPolicy.DESTROY)
            for kind in ("SlowSearch", "SlowIndex", "App")
        }
        # OpenSearch writes its logs with its service principal; this account's domains only.
        logs_policy = logs.CfnResourcePolicy(
            self, "LogsPolicy",
            policy_name=f"{config.prefix}-opensearch-logs",
            policy_document=Stack.of(self).to_json_string({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "es.amazonaws.com"},
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [group.log_group_arn for group in log_groups.values()],
                    "Condition": {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                }],
            }),
        )
        zone_aware = config.opensearch_zone_awareness
        masters = config.opensearch_master_nodes
        # Without zone awareness a VPC domain takes exactly one subnet.
        subnets = (network.private_subnets if zone_aware
                   else ec2.SubnetSelection(subnets=[network.vpc.private_subnets[0]]))
        self.domain = opensearch.Domain(
            self, "Domain",
            version=opensearch.EngineVersion.open_search(config.opensearch_engine_version),
            capacity=opensearch.CapacityConfig(
                data_nodes=config.opensearch_data_nodes,
                data_node_instance_type=config.opensearch_instance_type,
                master_nodes=masters or None,
                master_node_instance_type=config.opensearch_master_instance_type if masters else None,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(enabled=True, volume_size=config.opensearch_volume_gb,
                                      volume_type=ec2.EbsDeviceVolumeType.GP3),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=zone_aware,
                                                          availability_zone_count=2 if zone_aware else None),
            vpc=network.vpc,
            vpc_subnets=[subnets],
            security_groups=[self.security_group],
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True, slow_search_log_group=log_groups["SlowSearch"],
                slow_index_log_enabled=True, slow_index_log_group=log_groups["SlowIndex"],
                app_log_enabled=True, app_log_group=log_groups["App"],
            ),
            suppress_logs_resource_policy=True,
            enable_version_upgrade=True,
            # The vectors can be rebuilt from PostgreSQL (re-index), but not in minutes.
            removal_policy=RemovalPolicy.RETAIN if config.deletion_protection else RemovalPolicy.DESTROY,
        )
        self.domain.node.add_dependency(logs_policy)
        self.url = Fn.join("", ["https://", self.domain.domain_endpoint])
        self._roles: list[iam.IRole] = []
        nag.opensearch_domain(self.domain, config)

    def admit(self, role: iam.IRole) -> None:
        """Name ``role`` in the domain's access policy (applied by :meth:`apply_access_policy`)."""
        self._roles.append(role)

    def apply_access_policy(self) -> None:
        """The domain's access policy: the admitted roles, the HTTP actions, the domain's paths.
        Called once every function role exists."""
        if not self._roles:
            return
        domain = self.domain
        document = {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": [role.role_arn for role in self._roles]},
                "Action": ALL_HTTP_ACTIONS,
                "Resource": f"{domain.domain_arn}/*",
            }],
        }
        call = cr.AwsSdkCall(
            service="OpenSearch", action="updateDomainConfig",
            parameters={"DomainName": domain.domain_name,
                        "AccessPolicies": Stack.of(self).to_json_string(document)},
            physical_resource_id=cr.PhysicalResourceId.of(domain.domain_name),
            output_paths=["DomainConfig.AccessPolicies"],
        )
        provider_logs = logs.LogGroup(self, "AccessPolicyLogs", retention=self.config.log_retention,
                                      removal_policy=RemovalPolicy.DESTROY)
        # Named "AccessPolicy" under the domain, where CDK's own access-policy resource sits and
        # where cdk-nag reads the policy from.
        cr.AwsCustomResource(
            domain, "AccessPolicy",
            resource_type="Custom::OpenSearchAccessPolicy",
            on_create=call, on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["es:UpdateDomainConfig"], resources=[domain.domain_arn])]),
            log_group=provider_logs,
            install_latest_aws_sdk=False,
        )
        nag.aws_custom_resource(Stack.of(self))
