"""SQS queues from the catalog's ``QUEUES`` (docs/architecture.md §2.7): each with a dead-letter
queue and an alarm on it, fed by S3 ``ObjectCreated`` notifications where the catalog says
so; the consuming function's event source mapping is wired with the other triggers
(infra/functions.py)."""

from __future__ import annotations

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.catalog import QueueSpec
from infra import nag
from infra.functions import Shared, construct_id
from infra.observability import FIVE_MINUTES, alarm, queue_age_alarm
from infra.topology import DLQ_RETENTION_DAYS, visibility_timeout_s

# How long an unconsumed message stays in the queue itself (SQS's default); its dead letters
# keep the longer DLQ_RETENTION_DAYS, which must not be shorter (a moved message keeps its
# original enqueue time).
QUEUE_RETENTION_DAYS = 4
# CDK's singleton Lambda that applies a bucket's notification configuration (a custom resource).
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def queue_id(name: str) -> str:
    return construct_id(name) + "Queue"


def build_queue(scope: Construct, spec: QueueSpec, shared: Shared) -> sqs.Queue:
    """The queue, its dead-letter queue and the DLQ alarm, with the catalog's S3 notifications."""
    cid = queue_id(spec.name)
    common: dict[str, object] = {"encryption": sqs.QueueEncryption.SQS_MANAGED, "enforce_ssl": True,
                                 "removal_policy": RemovalPolicy.DESTROY}
    dlq = sqs.Queue(scope, f"{cid}Dlq", retention_period=Duration.days(DLQ_RETENTION_DAYS),
                    **common)  # type: ignore[arg-type]
    queue = sqs.Queue(
        scope, cid,
        visibility_timeout=Duration.seconds(visibility_timeout_s(spec)),
        retention_period=Duration.days(QUEUE_RETENTION_DAYS),
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=spec.max_receive_count),
        **common,  # type: ignore[arg-type]
    )
    config = shared.config
    queue_age_alarm(scope, cid, queue, spec.name, config, shared.alarms)
    alarm(scope, f"{cid}DeadLetters",
          metric=dlq.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
          threshold=1,
          description=(f"Stratus {config.stage}: messages of queue {spec.name} failed {spec.max_receive_count} "
                       "times and wait in its dead-letter queue"),
          topic=shared.alarms)
    for notification in spec.s3_notifications:
        if notification.bucket not in shared.data.buckets:
            raise ValueError(f"queue {spec.name!r}: unknown bucket {notification.bucket!r}; "
                             f"known: {sorted(shared.data.buckets)}")
        bucket = shared.data.buckets[notification.bucket]
        filters = [s3.NotificationKeyFilter(prefix=notification.prefix)] if notification.prefix else []
        bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(queue), *filters)
        _notifications_handler(Stack.of(bucket), shared)
    return queue


def _notifications_handler(stack: Stack, shared: Shared) -> None:
    """CDK's bucket-notifications Lambda (one per stack): its own log group with the stage's
    retention, as every function of the app has, and its cdk-nag acknowledgments."""
    handler = stack.node.try_find_child(NOTIFICATIONS_HANDLER_ID)
    assert isinstance(handler, Construct), "add_event_notification creates the handler"
    if handler.node.try_find_child("Logs") is not None:
        return
    log_group = logs.LogGroup(handler, "Logs", retention=shared.config.log_retention,
                              removal_policy=RemovalPolicy.DESTROY)
    function = handler.node.find_child("Resource")
    assert isinstance(function, CfnResource)
    function.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name})
    nag.notifications_handler(handler)


EVENT_DLQ_ID = "EventTargetsDlq"


def event_targets_dlq(scope: Construct, shared: Shared) -> sqs.Queue:
    """The stack's dead-letter queue for EventBridge targets (schedules): an event that still
    fails after the target's retries lands here, and its alarm says so, instead of being
    dropped. One per stack, made with the first schedule."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child(EVENT_DLQ_ID)
    if isinstance(existing, sqs.Queue):
        return existing
    # SSE-SQS: EventBridge can send to it (an AWS-managed KMS key would refuse EventBridge).
    dlq = sqs.Queue(stack, EVENT_DLQ_ID, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                    retention_period=Duration.days(DLQ_RETENTION_DAYS), removal_policy=RemovalPolicy.DESTROY)
    nag.dead_letter_queue(dlq)
    config = shared.config
    alarm(stack, f"{EVENT_DLQ_ID}Messages",
          metric=dlq.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
          threshold=1,
          description=f"Stratus {config.stage}: scheduled events failed every retry and wait in the dead-letter queue",
          topic=shared.alarms)
    return dlq
