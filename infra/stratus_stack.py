"""The root stack: shared network, data, API and layers, one nested stack per domain, and the
edge (CloudFront) in front of the API and the streaming function URLs."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnCondition, CfnOutput, CfnResource, Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions import catalog
from infra import nag
from infra.api import Api
from infra.capacity import check_budget, validate_http_timeouts
from infra.config import StratusConfig
from infra.data import CACHE_MAX_GB, Data
from infra.dependency_layers import DependencyLayers
from infra.domain_stack import DomainStack, domain_stack_id
from infra.edge import Edge
from infra.functions import Shared
from infra.migrations import deploy_domains, protect_cluster
from infra.network import Network
from infra.observability import FIVE_MINUTES, ONE_MINUTE, AlarmTopic, alarm, dashboard
from infra.packaging import stage_function_code
from infra.regions import PARAMS_AND_SECRETS_VERSION
from infra.state_machines import MachineRef, referenced_functions
from infra.topology import validate_facades, validate_queues, validate_streaming


def validate_catalog() -> None:
    """Refuse a catalog the API could not serve (caught at synth, not at deploy)."""
    names = [fn.name for fn in catalog.FUNCTIONS]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate function names in the catalog: {duplicates}")
    route_keys = [fn.trigger.route_key for fn in catalog.FUNCTIONS if isinstance(fn.trigger, catalog.Http)]
    duplicates = sorted({k for k in route_keys if route_keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"duplicate routes in the catalog: {duplicates}")
    for trigger_type in (catalog.Authorizer, catalog.DefaultRoute):
        count = sum(isinstance(fn.trigger, trigger_type) for fn in catalog.FUNCTIONS)
        if count > 1:
            raise ValueError(f"the catalog may hold one {trigger_type.__name__} entry, not {count}")
    validate_queues()
    validate_streaming()
    validate_facades()
    validate_http_timeouts(catalog.FUNCTIONS)


class StratusStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id,
                         description=f"Stratus {config.stage}: serverless LLM application platform", **kwargs)
        validate_catalog()
        # Every function's class budget fits the database and the account (docs/adr/0047).
        check_budget(catalog.FUNCTIONS, config.budget)
        self.config = config
        self.network = Network(self, "Network", config=config)
        self.data = Data(self, "Data", config=config, network=self.network)
        self.layers = DependencyLayers(self, "Layers")
        self.alarms = AlarmTopic(self, "Alarms", config=config)
        self.api = Api(self, "Api", config=config)
        code_dir = stage_function_code()
        shared = Shared(
            config=config, network=self.network, data=self.data, layers=self.layers, api=self.api,
            alarms=self.alarms, code_dir=code_dir,
            # Secrets reach the functions through the extension's local HTTP endpoint
            # (shared/aws/secrets.py), so reading one does not import boto3.
            params_and_secrets=lambda_.ParamsAndSecretsLayerVersion.from_version(
                getattr(lambda_.ParamsAndSecretsVersions, "V" + PARAMS_AND_SECRETS_VERSION.replace(".", "_")),
                cache_enabled=True,
                http_port=2773,
                secrets_manager_ttl=Duration.minutes(5),
                log_level=lambda_.ParamsAndSecretsLogLevel.WARN,
            ),
        )
        self.domain_stacks: dict[str, DomainStack] = {
            domain: DomainStack(self, domain_stack_id(domain), domain=domain, shared=shared)
            for domain in catalog.domains()
        }
        stacks = list(self.domain_stacks.values())
        # Every domain stack waits for the schema: the migration's own stack comes first.
        schema_stacks = [self.domain_stacks[domain] for domain in sorted(deploy_domains())]
        for stack in stacks:
            if stack not in schema_stacks:
                for schema in schema_stacks:
                    stack.add_stack_dependency(schema)
        functions: dict[str, lambda_.IFunction] = {
            name: function for stack in stacks for name, function in stack.functions.items()}
        authorizers = [a for a in (stack.add_authorizer() for stack in stacks) if a is not None]
        authorizer = authorizers[0] if authorizers else None
        state_machines: dict[str, MachineRef] = {}
        for stack in stacks:
            state_machines.update(stack.add_state_machines(functions))
        tasks = {spec.name: referenced_functions(spec) for spec in catalog.STATE_MACHINES}
        queues: dict[str, sqs.IQueue] = {name: queue for stack in stacks for name, queue in stack.queues.items()}
        for stack in stacks:
            stack.wire(authorizer=authorizer, state_machines=state_machines, state_machine_tasks=tasks,
                       queues=queues, functions=functions)
        if self.data.opensearch is not None:
            # Every role that may reach the domain exists now.
            self.data.opensearch.apply_access_policy()
        # One base URL: the streaming paths to their function URLs, the rest to the API.
        self.edge = Edge(self, "Edge", config=config, api=self.api,
                         function_urls={name: url for stack in stacks for name, url in stack.function_urls.items()},
                         log_bucket=self.data.access_logs, origin_secret=self.data.origin_secret)

        self._data_alarms()
        self.dashboard = dashboard(self, "Dashboard", config=config, data=self.data, api=self.api,
                                   distribution_id=self.edge.distribution.distribution_id,
                                   state_machine_arns={name: ref.arn for name, ref in state_machines.items()})
        nag.root_stack(self)
        CfnOutput(self, "BaseUrl", value=self.edge.url,
                  description="The clients' base URL (CloudFront): the API and its streaming paths")
        CfnOutput(self, "AdminTokenSecretArn", value=self.data.admin_token.secret_arn,
                  description="Platform admin token: prefix + token from this secret")
        CfnOutput(self, "ProviderKeysSecretArn", value=self.data.provider_keys.secret_arn,
                  description='Platform provider API keys: put a JSON object here, e.g. {"OPENAI_API_KEY": "..."}')
        CfnOutput(self, "UploadsBucket", value=self.data.uploads.bucket_name)
        if self.data.opensearch is not None:
            CfnOutput(self, "OpenSearchUrl", value=self.data.opensearch.url,
                      description="The OpenSearch domain (vector store), reachable from the VPC only")
        # Last: deletion protection once everything above exists (a failed first deploy can
        # still roll the cluster back).
        protect_cluster(self, self.data, enabled=config.deletion_protection, retention=config.log_retention)

    def _data_alarms(self) -> None:
        config = self.config
        alarm(self, "ProxyPinnedSessions",
              metric=cloudwatch.Metric(namespace="AWS/RDS", metric_name="DatabaseConnectionsCurrentlySessionPinned",
                                       dimensions_map={"ProxyName": self.data.proxy.db_proxy_name},
                                       statistic="Maximum", period=FIVE_MINUTES),
              threshold=config.pinned_sessions_alarm, evaluation_periods=3,
              description=(f"Stratus {config.stage}: RDS Proxy pinned sessions near the connection budget "
                           "(every Lambda container pins one; see docs/architecture.md §2.6)"),
              topic=self.alarms)
        alarm(self, "AuroraAcuHigh",
              metric=cloudwatch.Metric(namespace="AWS/RDS", metric_name="ACUUtilization",
                                       dimensions_map={"DBClusterIdentifier": self.data.cluster.cluster_identifier},
                                       statistic="Average", period=FIVE_MINUTES),
              threshold=config.acu_utilization_alarm_percent, evaluation_periods=3,
              description=f"Stratus {config.stage}: Aurora near its maximum capacity (ACU)",
              topic=self.alarms)
        proxy = {"ProxyName": self.data.proxy.db_proxy_name}
        alarm(self, "ProxyBorrowLatency",
              metric=cloudwatch.Metric(namespace="AWS/RDS", metric_name="DatabaseConnectionsBorrowLatency",
                                       dimensions_map=proxy, statistic="p99", period=FIVE_MINUTES),
              threshold=config.proxy_borrow_latency_alarm_ms * 1000, evaluation_periods=3,  # microseconds
              description=(f"Stratus {config.stage}: RDS Proxy p99 connection borrow latency above "
                           f"{config.proxy_borrow_latency_alarm_ms} ms (the connection pool is exhausted)"),
              topic=self.alarms)
        alarm(self, "ProxyAvailability",
              metric=cloudwatch.Metric(namespace="AWS/RDS", metric_name="AvailabilityPercentage",
                                       dimensions_map={**proxy, "TargetGroup": "default", "TargetRole": "READ_WRITE"},
                                       statistic="Minimum", period=ONE_MINUTE),
              threshold=100, evaluation_periods=3, comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
              description=f"Stratus {config.stage}: RDS Proxy cannot reach the writer (availability below 100%)",
              topic=self.alarms)
        cache = {"clusterId": self.data.cache.serverless_cache_name}
        alarm(self, "CacheStorage",
              metric=cloudwatch.Metric(namespace="AWS/ElastiCache", metric_name="BytesUsedForCache",
                                       dimensions_map=cache, statistic="Maximum", period=FIVE_MINUTES),
              threshold=CACHE_MAX_GB * 2**30 * config.cache_storage_alarm_percent / 100,
              description=(f"Stratus {config.stage}: Valkey storage above {config.cache_storage_alarm_percent:.0f}% "
                           f"of its {CACHE_MAX_GB} GB limit"),
              topic=self.alarms)
        alarm(self, "CacheEcpu",
              metric=cloudwatch.Metric(namespace="AWS/ElastiCache", metric_name="ElastiCacheProcessingUnits",
                                       dimensions_map=cache, statistic="Sum", period=ONE_MINUTE),
              threshold=config.cache_ecpu_alarm_per_s * 60, evaluation_periods=5,
              description=(f"Stratus {config.stage}: Valkey above {config.cache_ecpu_alarm_per_s} ECPU/s "
                           "(cost, and rate limits or revocation checks running hot)"),
              topic=self.alarms)
        # CloudFront publishes its metrics in us-east-1 only, and an alarm reads its own
        # region's: the alarm exists where it can see them; elsewhere the dashboard shows the
        # rate (cross-region widget) and Api5xx covers the API origin.
        edge_5xx = alarm(
            self, "Edge5xxRate",
            metric=cloudwatch.Metric(namespace="AWS/CloudFront", metric_name="5xxErrorRate",
                                     dimensions_map={"DistributionId": self.edge.distribution.distribution_id,
                                                     "Region": "Global"},
                                     statistic="Average", period=FIVE_MINUTES),
            threshold=config.edge_5xx_alarm_percent, evaluation_periods=2,
            description=f"Stratus {config.stage}: CloudFront 5xx rate above {config.edge_5xx_alarm_percent}%",
            topic=self.alarms)
        in_us_east_1 = CfnCondition(self, "InUsEast1", expression=Fn.condition_equals(Aws.REGION, "us-east-1"))
        cfn_alarm = edge_5xx.node.default_child
        assert isinstance(cfn_alarm, CfnResource)
        cfn_alarm.cfn_options.condition = in_us_east_1
        alarm(self, "Api5xx",
              metric=self.api.http_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
              threshold=5, evaluation_periods=1,
              description=f"Stratus {config.stage}: HTTP API 5xx answers",
              topic=self.alarms)
