"""The VPC: private subnets for everything that reaches a data store, one NAT gateway for
provider APIs, and endpoints so AWS API traffic stays off the NAT (docs/architecture.md §2.5)."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from functions.catalog import Function
from infra import nag
from infra.config import AVAILABILITY_ZONES, StratusConfig

# AWS APIs the functions (and the Parameters and Secrets extension) call from the VPC.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "BedrockRuntime": ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME,
}


# Endpoints whose resources are not the account's: Bedrock's foundation models are AWS's.
FOREIGN_RESOURCE_ENDPOINTS = {"BedrockRuntime"}


def _endpoint_statement(*, own_resources: bool) -> iam.PolicyStatement:
    conditions = {"aws:PrincipalAccount": Aws.ACCOUNT_ID}
    if own_resources:
        conditions["aws:ResourceAccount"] = Aws.ACCOUNT_ID
    # Any action: the principals' own IAM policies say which; the endpoint only fences the accounts.
    return iam.PolicyStatement(principals=[iam.AnyPrincipal()], actions=["*"], resources=["*"],
                               conditions={"StringEquals": conditions})


# Catalog access that means calling out of the VPC: model providers (the platform's keys,
# tenants' credentials for their providers and endpoints) and the Lambda API (no endpoint).
_INTERNET_RESOURCES = {"secret:provider-keys", "kms:credentials"}
_INTERNET_KINDS = {"function"}


def needs_internet(fn: Function) -> bool:
    return any(a.resource in _INTERNET_RESOURCES or a.kind in _INTERNET_KINDS for a in fn.access)


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig) -> None:
        super().__init__(scope, construct_id)
        self._retention = config.log_retention
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=config.log_retention,
                                  removal_policy=RemovalPolicy.DESTROY)
        self.vpc = ec2.Vpc(
            self, "Vpc",
            max_azs=AVAILABILITY_ZONES,
            # The stage's profile: one NAT gateway in dev (provider API calls tolerate an AZ
            # outage better than the bill tolerates a NAT per AZ), one per AZ in prod.
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                        cidr_mask=20),
            ],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
            flow_logs={"All": ec2.FlowLogOptions(
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                traffic_type=ec2.FlowLogTrafficType.ALL,
            )},
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        # Endpoint policies: only this account's principals use the endpoints, and (where every
        # resource reached is the account's own) only on this account's resources: a stolen
        # credential of another account cannot carry data out through them.
        s3_endpoint = self.vpc.node.find_child("S3")
        assert isinstance(s3_endpoint, ec2.GatewayVpcEndpoint)
        s3_endpoint.add_to_policy(_endpoint_statement(own_resources=False))
        # open=False: an endpoint admits only the security groups given access below, not
        # the whole VPC CIDR.
        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {
            name: self.vpc.add_interface_endpoint(name, service=service, subnets=self.private_subnets,
                                                  private_dns_enabled=True, open=False)
            for name, service in INTERFACE_ENDPOINTS.items()
        }
        for name, endpoint in self.endpoints.items():
            endpoint.add_to_policy(_endpoint_statement(own_resources=name not in FOREIGN_RESOURCE_ENDPOINTS))

        # Every in-VPC function shares one security group: the data stores admit it by
        # reference, so adding a function never touches their rules. Its egress is exactly
        # the data stores, the endpoints and S3 (rules added with each): no internet.
        self.functions_sg = ec2.SecurityGroup(
            self, "FunctionsSg", vpc=self.vpc, allow_all_outbound=False,
            description="Stratus functions in the VPC (egress to data stores, endpoints and S3 only)")
        # Functions that call model providers (the platform's keys, tenants' credentials and
        # endpoints) or other functions (the Lambda API) reach the internet through the NAT:
        # this group, added to theirs (security_groups_for).
        self.internet_sg = ec2.SecurityGroup(
            self, "InternetEgressSg", vpc=self.vpc, allow_all_outbound=True,
            description="Stratus functions that call providers or the Lambda API: internet egress through the NAT")
        # The migration function alone talks to the cluster directly (owner credentials,
        # DDL that RDS Proxy session pinning would not help); everything else goes via the proxy.
        self.database_admin_sg = ec2.SecurityGroup(
            self, "DatabaseAdminSg", vpc=self.vpc, allow_all_outbound=False,
            description="Stratus functions with owner access to the Aurora cluster (migrations)")
        self.allow_endpoints(self.functions_sg, *INTERFACE_ENDPOINTS)
        # S3 through the gateway endpoint: its addresses are the region's S3 prefix list.
        self.functions_sg.add_egress_rule(ec2.Peer.prefix_list(self._s3_prefix_list_id()), ec2.Port.tcp(443),
                                          "S3 through the gateway endpoint")

    def _s3_prefix_list_id(self) -> str:
        """The AWS-managed prefix list of S3 in this region (its id differs per region and
        CloudFormation cannot look it up: a describe call at deploy time)."""
        call = cr.AwsSdkCall(
            service="EC2", action="describeManagedPrefixLists",
            parameters={"Filters": [{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{Aws.REGION}.s3"]}]},
            physical_resource_id=cr.PhysicalResourceId.of("s3-prefix-list"),
            output_paths=["PrefixLists.0.PrefixListId"],
        )
        lookup = cr.AwsCustomResource(
            self, "S3PrefixList", resource_type="Custom::StratusS3PrefixList",
            on_create=call, on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["ec2:DescribeManagedPrefixLists"], resources=["*"])]),
            log_group=logs.LogGroup(self, "S3PrefixListLogs", retention=self._retention,
                                    removal_policy=RemovalPolicy.DESTROY),
            install_latest_aws_sdk=False,
        )
        nag.describe_only(lookup, "ec2:DescribeManagedPrefixLists")
        nag.aws_custom_resource(Stack.of(self))
        return lookup.get_response_field("PrefixLists.0.PrefixListId")

    def security_groups_for(self, fn: Function) -> list[ec2.ISecurityGroup]:
        """An in-VPC function's security groups, from its catalog access."""
        groups: list[ec2.ISecurityGroup] = [self.functions_sg]
        if any(a.resource == "database_admin" for a in fn.access):
            groups.append(self.database_admin_sg)
        if needs_internet(fn):
            groups.append(self.internet_sg)
        return groups

    def allow_endpoints(self, peer: ec2.IConnectable, *names: str) -> None:
        """Let ``peer`` call the named AWS APIs through their interface endpoints (HTTPS)."""
        for name in names:
            self.endpoints[name].connections.allow_default_port_from(peer, f"{name} API over the endpoint")
