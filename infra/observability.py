"""Alarms and where they go: one encrypted SNS topic that every alarm notifies."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import StratusConfig


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
