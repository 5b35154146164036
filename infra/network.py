"""The VPC: private subnets for everything that reaches a data store, one NAT gateway for
provider APIs, and endpoints so AWS API traffic stays off the NAT (docs/architecture.md §2.5)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

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


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig) -> None:
        super().__init__(scope, construct_id)
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
        # open=False: an endpoint admits only the security groups given access below, not
        # the whole VPC CIDR.
        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {
            name: self.vpc.add_interface_endpoint(name, service=service, subnets=self.private_subnets,
                                                  private_dns_enabled=True, open=False)
            for name, service in INTERFACE_ENDPOINTS.items()
        }

        # Every in-VPC function shares one security group: the data stores admit it by
        # reference, so adding a function never touches their rules.
        self.functions_sg = ec2.SecurityGroup(
            self, "FunctionsSg", vpc=self.vpc, allow_all_outbound=True,
            description="Stratus functions in the VPC (egress to data stores, endpoints and NAT)")
        # The migration function alone talks to the cluster directly (owner credentials,
        # DDL that RDS Proxy session pinning would not help); everything else goes via the proxy.
        self.database_admin_sg = ec2.SecurityGroup(
            self, "DatabaseAdminSg", vpc=self.vpc, allow_all_outbound=True,
            description="Stratus functions with owner access to the Aurora cluster (migrations)")
        self.allow_endpoints(self.functions_sg, *INTERFACE_ENDPOINTS)

    def allow_endpoints(self, peer: ec2.IConnectable, *names: str) -> None:
        """Let ``peer`` call the named AWS APIs through their interface endpoints (HTTPS)."""
        for name in names:
            self.endpoints[name].connections.allow_default_port_from(peer, f"{name} API over the endpoint")
