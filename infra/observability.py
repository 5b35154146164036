"""Alarms and where they go: one encrypted SNS topic that every alarm notifies, the alarms
every function, queue and state machine gets from its catalog entry (so an entry added later
has them without an edit here), and the stage's dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import StratusConfig

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_sqs as sqs

    from functions.catalog import Function
    from infra.api import Api
    from infra.data import Data


class AlarmTopic(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch can only publish to an encrypted topic whose key lets it use the key,
        # which an AWS-managed key does not: hence a customer-managed key.
        key = kms.Key(self, "Key", enable_key_rotation=True,
                      description="Stratus alarm topic encryption")
        key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy, "*" means this key
            # Only this account's alarms: CloudWatch acting for another account cannot use the key.
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ))
        self.topic = sns.Topic(self, "Topic", display_name=f"{config.prefix} alarms", master_key=key,
                               enforce_ssl=True)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.action = cw_actions.SnsAction(self.topic)


def alarm(scope: Construct, construct_id: str, *, metric: cloudwatch.IMetric, threshold: float,
          description: str, topic: AlarmTopic, evaluation_periods: int = 1,
          comparison: cloudwatch.ComparisonOperator =
          cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD) -> cloudwatch.Alarm:
    """An alarm that notifies the topic; missing data (no traffic) is healthy."""
    created = cloudwatch.Alarm(
        scope, construct_id,
        metric=metric,
        threshold=threshold,
        evaluation_periods=evaluation_periods,
        comparison_operator=comparison,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=description,
    )
    created.add_alarm_action(topic.action)
    return created


FIVE_MINUTES = Duration.minutes(5)


ONE_MINUTE = Duration.minutes(1)


def function_alarms(scope: Construct, cid: str, function: lambda_.Function, fn: Function, config: StratusConfig,
                    topic: AlarmTopic) -> None:
    """Every function's alarms: errors (the profile's threshold), throttles (a concurrency
    budget reached, or the account's) and a p99 duration near the timeout (the next spike
    times out)."""
    alarm(scope, f"{cid}Errors", metric=function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
          threshold=config.function_errors_alarm,
          description=f"Stratus {config.stage}: function {fn.name} raised {config.function_errors_alarm}+ errors "
                      "in 5 minutes",
          topic=topic)
    alarm(scope, f"{cid}Throttles", metric=function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
          threshold=1, evaluation_periods=2,
          description=f"Stratus {config.stage}: function {fn.name} throttled (its concurrency budget is used up)",
          topic=topic)
    near_timeout_ms = fn.timeout_s * 1000 * config.duration_alarm_percent / 100
    alarm(scope, f"{cid}NearTimeout", metric=function.metric_duration(period=FIVE_MINUTES, statistic="p99"),
          threshold=near_timeout_ms, evaluation_periods=3,
          description=(f"Stratus {config.stage}: function {fn.name} p99 duration above "
                       f"{config.duration_alarm_percent:.0f}% of its {fn.timeout_s} s timeout"),
          topic=topic)


def queue_age_alarm(scope: Construct, cid: str, queue: sqs.IQueue, name: str, config: StratusConfig,
                    topic: AlarmTopic) -> None:
    """Work waits: the consumer is failing, throttled or too slow."""
    alarm(scope, f"{cid}OldestMessage",
          metric=queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, statistic="Maximum"),
          threshold=config.queue_age_alarm_s, evaluation_periods=2,
          description=(f"Stratus {config.stage}: the oldest message of queue {name} has waited more than "
                       f"{config.queue_age_alarm_s} s"),
          topic=topic)


def _search(namespace: str, dimension: str, metric: str, term: str, statistic: str) -> cloudwatch.IMetric:
    """Every metric ``metric`` of the stage's resources (their generated names start with the
    stack's name), so the dashboard covers functions, queues and machines added later."""
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{namespace},{dimension}}} MetricName=\"{metric}\" \"{term}\"', '{statistic}', 300)",
        using_metrics={}, label="", period=FIVE_MINUTES)


def dashboard(scope: Construct, construct_id: str, *, config: StratusConfig, data: Data, api: Api,
              distribution_id: str, state_machine_arns: Mapping[str, str]) -> cloudwatch.Dashboard:
    """The stage at a glance: the edge, the API, every function and queue (by search, from the
    stack's name), every state machine (by ARN: CloudFormation names most without the stage),
    and the data stores."""
    from aws_cdk import Stack

    term = Stack.of(scope).stack_name

    def graph(title: str, *metrics: cloudwatch.IMetric, width: int = 8) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, left=list(metrics), width=width, height=6)

    def rds(metric: str, dimensions: dict[str, str], statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace="AWS/RDS", metric_name=metric, dimensions_map=dimensions,
                                 statistic=statistic, period=FIVE_MINUTES)

    proxy = {"ProxyName": data.proxy.db_proxy_name}
    cluster = {"DBClusterIdentifier": data.cluster.cluster_identifier}
    cache = {"clusterId": data.cache.serverless_cache_name}
    edge = {"DistributionId": distribution_id, "Region": "Global"}
    board = cloudwatch.Dashboard(scope, construct_id, dashboard_name=f"{config.prefix}-overview",
                                 default_interval=Duration.hours(6))
    board.add_widgets(
        graph("Edge (CloudFront, us-east-1): requests and 5xx %",
              cloudwatch.Metric(namespace="AWS/CloudFront", metric_name="Requests", dimensions_map=edge,
                                statistic="Sum", period=FIVE_MINUTES, region="us-east-1"),
              cloudwatch.Metric(namespace="AWS/CloudFront", metric_name="5xxErrorRate", dimensions_map=edge,
                                statistic="Average", period=FIVE_MINUTES, region="us-east-1")),
        graph("HTTP API: requests, 4xx, 5xx",
              api.http_api.metric_count(period=FIVE_MINUTES), api.http_api.metric_client_error(period=FIVE_MINUTES),
              api.http_api.metric_server_error(period=FIVE_MINUTES)),
        graph("HTTP API: latency p99 (ms)", api.http_api.metric_latency(period=FIVE_MINUTES, statistic="p99")),
    )
    board.add_widgets(
        graph("Functions: errors", _search("AWS/Lambda", "FunctionName", "Errors", term, "Sum")),
        graph("Functions: throttles", _search("AWS/Lambda", "FunctionName", "Throttles", term, "Sum")),
        graph("Functions: p99 duration (ms)", _search("AWS/Lambda", "FunctionName", "Duration", term, "p99")),
    )
    board.add_widgets(
        graph("Functions: concurrent executions",
              _search("AWS/Lambda", "FunctionName", "ConcurrentExecutions", term, "Maximum")),
        graph("Queues: age of the oldest message (s)",
              _search("AWS/SQS", "QueueName", "ApproximateAgeOfOldestMessage", term, "Maximum")),
        graph("State machines: failed and timed-out executions",
              *(cloudwatch.Metric(namespace="AWS/States", metric_name=metric, dimensions_map={"StateMachineArn": arn},
                                  statistic="Sum", period=FIVE_MINUTES, label=f"{name} {label}")
                for name, arn in sorted(state_machine_arns.items())
                for metric, label in (("ExecutionsFailed", "failed"), ("ExecutionsTimedOut", "timed out")))),
    )
    board.add_widgets(
        graph("RDS Proxy: connections (client, database, pinned)",
              rds("ClientConnections", proxy, "Maximum"), rds("DatabaseConnections", proxy, "Maximum"),
              rds("DatabaseConnectionsCurrentlySessionPinned", proxy, "Maximum")),
        graph("RDS Proxy: borrow latency p99 (µs)", rds("DatabaseConnectionsBorrowLatency", proxy, "p99")),
        graph("Aurora: ACU utilization % and capacity",
              rds("ACUUtilization", cluster, "Average"), rds("ServerlessDatabaseCapacity", cluster, "Average")),
    )
    board.add_widgets(
        graph("Valkey: bytes stored",
              cloudwatch.Metric(namespace="AWS/ElastiCache", metric_name="BytesUsedForCache", dimensions_map=cache,
                                statistic="Maximum", period=FIVE_MINUTES)),
        graph("Valkey: ECPU",
              cloudwatch.Metric(namespace="AWS/ElastiCache", metric_name="ElastiCacheProcessingUnits",
                                dimensions_map=cache, statistic="Sum", period=FIVE_MINUTES)),
    )
    return board
