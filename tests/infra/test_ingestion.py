"""S3-triggered ingestion (docs/architecture.md §2.7, docs/adr/0023): each catalog queue with its
dead-letter queue and alarm, S3 ObjectCreated notifications into it, the consumer's event
source mapping with partial batch responses, and the senders' grants. Catalog-driven: a new
queue, consumer or sender is covered without touching this file."""

from __future__ import annotations

from typing import Any

import pytest

from functions import catalog
from infra.functions import env_name
from infra.nag import logical_id as cfn_logical_id
from infra.queues import queue_id
from infra.topology import (
    DLQ_RETENTION_DAYS,
    consumer,
    validate_queue_trigger,
    validate_queues,
    visibility_timeout_s,
)
from tests.infra.support import Synth, as_list, ref_logical_id, statements

QUEUE_TRIGGERED = [fn for fn in catalog.FUNCTIONS if isinstance(fn.trigger, catalog.Queue)]
SENDERS = [(fn, access.resource.partition(":")[2]) for fn in catalog.FUNCTIONS for access in fn.access
           if access.resource.startswith("queue:")]
CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}


def _queues(synth: Synth, spec: catalog.QueueSpec) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """(queue id, queue, DLQ id, DLQ) of a catalog queue in its domain's stack."""
    resources = synth.json(spec.domain)["Resources"]
    prefix = queue_id(spec.name)
    (queue_lid,) = [k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"
                    and k.startswith(prefix) and not k.startswith(prefix + "Dlq")]
    (dlq_lid,) = [k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue" and k.startswith(prefix + "Dlq")]
    return queue_lid, resources[queue_lid], dlq_lid, resources[dlq_lid]


def _queue_of(synth: Synth, stack: str, value: Any) -> str | None:
    """The logical id (in its domain's stack) of the queue a value references, from any stack."""
    value = synth.root_value(stack, value)
    target = ref_logical_id(value)
    if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1].startswith("Outputs."):
        # A nested stack's output, read by the root: follow it into that stack.
        nested = next(name for name, s in synth.root.domain_stacks.items()
                      if s.nested_stack_resource is not None and cfn_logical_id(s.nested_stack_resource) == target)
        output = synth.json(nested)["Outputs"][value["Fn::GetAtt"][1].removeprefix("Outputs.")]
        return ref_logical_id(output["Value"])
    return target


@pytest.mark.parametrize("spec", catalog.QUEUES, ids=lambda spec: spec.name)
def test_queue_has_an_encrypted_tls_only_dead_letter_queue_and_redrive(synth: Synth, spec: catalog.QueueSpec) -> None:
    queue_lid, queue, dlq_lid, dlq = _queues(synth, spec)
    props, dlq_props = queue["Properties"], dlq["Properties"]
    assert props["RedrivePolicy"]["maxReceiveCount"] == spec.max_receive_count
    assert ref_logical_id(props["RedrivePolicy"]["deadLetterTargetArn"]) == dlq_lid
    assert props["VisibilityTimeout"] == visibility_timeout_s(spec)
    fn = consumer(spec)
    assert props["VisibilityTimeout"] >= fn.timeout_s, "Lambda refuses a queue that reappears mid-invocation"
    if spec.visibility_timeout_s is None:
        assert props["VisibilityTimeout"] == min(6 * fn.timeout_s, 12 * 3600)
    assert dlq_props["MessageRetentionPeriod"] == DLQ_RETENTION_DAYS * 86400 == 14 * 86400
    assert dlq_props["MessageRetentionPeriod"] >= props["MessageRetentionPeriod"]
    policies = synth.templates[spec.domain].find_resources("AWS::SQS::QueuePolicy").values()
    for lid, resource in ((queue_lid, props), (dlq_lid, dlq_props)):
        assert resource["SqsManagedSseEnabled"] is True
        (policy,) = [p for p in policies if [ref_logical_id(q) for q in p["Properties"]["Queues"]] == [lid]]
        assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
                   for s in statements(policy)), f"{lid} accepts plain HTTP"


@pytest.mark.parametrize("spec", catalog.QUEUES, ids=lambda spec: spec.name)
def test_dead_letters_raise_an_alarm(synth: Synth, spec: catalog.QueueSpec) -> None:
    _, _, dlq_lid, _ = _queues(synth, spec)
    alarms = [a["Properties"] for a in synth.templates[spec.domain].find_resources("AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
              and [ref_logical_id(d["Value"]) for d in a["Properties"]["Dimensions"]] == [dlq_lid]]
    (alarm,) = alarms
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"  # > 0
    assert alarm["AlarmActions"], "alarms notify the alarm topic"


@pytest.mark.parametrize("fn", QUEUE_TRIGGERED, ids=lambda fn: fn.name)
def test_queue_trigger_is_an_event_source_with_partial_batch_responses(synth: Synth, fn: catalog.Function) -> None:
    trigger = fn.trigger
    assert isinstance(trigger, catalog.Queue)
    spec = catalog.queue_by_name(trigger.queue)
    deployed = synth.function(fn.name)
    mappings = [m["Properties"] for m in synth.templates[deployed.stack].find_resources(
        "AWS::Lambda::EventSourceMapping").values() if ref_logical_id(m["Properties"]["FunctionName"])
        == deployed.logical_id]
    (mapping,) = mappings
    queue_lid, _, _, _ = _queues(synth, spec)
    assert _queue_of(synth, deployed.stack, mapping["EventSourceArn"]) == queue_lid
    assert mapping["BatchSize"] == trigger.batch_size
    assert mapping.get("MaximumBatchingWindowInSeconds", 0) == trigger.max_batching_window_s
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    role = ref_logical_id(deployed.props["Role"])
    consumed = {a for stack, role_id, s in synth.role_statements() if (stack, role_id) == (deployed.stack, role)
                for a in as_list(s["Action"])
                if any(_queue_of(synth, stack, r) == queue_lid for r in as_list(s["Resource"]))}
    assert consumed >= CONSUME
    assert "sqs:SendMessage" not in consumed or f"queue:{spec.name}" in {a.resource for a in fn.access}


@pytest.mark.parametrize("spec", [s for s in catalog.QUEUES if s.s3_notifications], ids=lambda spec: spec.name)
def test_s3_object_created_notifications_feed_the_queue(synth: Synth, spec: catalog.QueueSpec) -> None:
    queue_lid, _, _, _ = _queues(synth, spec)
    root = synth.json("root")["Resources"]
    notifications = {ref_logical_id(r["Properties"]["BucketName"]): r for r in root.values()
                     if r["Type"] == "Custom::S3BucketNotifications"}
    for notification in spec.s3_notifications:
        bucket_lid = cfn_logical_id(synth.root.data.buckets[notification.bucket])
        configurations = [c for c in notifications[bucket_lid]["Properties"]["NotificationConfiguration"][
            "QueueConfigurations"] if _queue_of(synth, "root", c["QueueArn"]) == queue_lid]
        (configuration,) = configurations
        assert configuration["Events"] == ["s3:ObjectCreated:*"]
        rules = configuration.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        assert rules == ([{"Name": "prefix", "Value": notification.prefix}] if notification.prefix else [])
        # The queue admits S3 for this bucket only.
        policies = synth.templates[spec.domain].find_resources("AWS::SQS::QueuePolicy").values()
        allowed = [s for p in policies for s in statements(p) if s["Effect"] == "Allow"
                   and s.get("Principal") == {"Service": "s3.amazonaws.com"}]
        (allow,) = allowed
        assert "sqs:SendMessage" in as_list(allow["Action"])
        assert ref_logical_id(allow["Resource"]) == queue_lid
        source = synth.root_value(spec.domain, allow["Condition"]["ArnLike"]["aws:SourceArn"])
        assert source == {"Fn::GetAtt": [bucket_lid, "Arn"]}


def test_the_notifications_handler_is_cdks_and_logs_with_retention(synth: Synth) -> None:
    if not any(spec.s3_notifications for spec in catalog.QUEUES):
        pytest.skip("no S3 notifications in the catalog")
    handlers = {k: r for k, r in synth.json("root")["Resources"].items()
                if r["Type"] == "AWS::Lambda::Function" and k.startswith("BucketNotificationsHandler")}
    (handler,) = handlers.values()
    group = ref_logical_id(handler["Properties"]["LoggingConfig"]["LogGroup"])
    assert synth.json("root")["Resources"][group]["Properties"]["RetentionInDays"] == 30


@pytest.mark.parametrize(("fn", "queue"), SENDERS, ids=[f"{fn.name}-{q}" for fn, q in SENDERS])
def test_senders_get_send_message_on_their_queue_and_its_url(synth: Synth, fn: catalog.Function, queue: str) -> None:
    deployed = synth.function(fn.name)
    queue_lid, _, _, _ = _queues(synth, catalog.queue_by_name(queue))
    assert _queue_of(synth, deployed.stack, deployed.env[env_name(queue, "QUEUE_URL")]) == queue_lid
    role = ref_logical_id(deployed.props["Role"])
    granted = {a for stack, role_id, s in synth.role_statements() if (stack, role_id) == (deployed.stack, role)
               for a in as_list(s["Action"]) if any(_queue_of(synth, stack, r) == queue_lid
                                                    for r in as_list(s["Resource"]))}
    assert "sqs:SendMessage" in granted
    assert not granted & {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"}


def test_only_senders_may_send(synth: Synth) -> None:
    senders = {fn.name for fn, _ in SENDERS}
    owners = synth.role_owners()
    holders = {owners.get((stack, role), f"{stack}/{role}") for stack, role, s in synth.role_statements()
               if s["Effect"] == "Allow" and "sqs:SendMessage" in as_list(s["Action"])}
    assert holders == senders


# --- Catalog rules, checked before synthesis ----------------------------------------------------


def _patched(monkeypatch: pytest.MonkeyPatch, *, functions: tuple[catalog.Function, ...] | None = None,
             queues: tuple[catalog.QueueSpec, ...] | None = None) -> None:
    if functions is not None:
        monkeypatch.setattr(catalog, "FUNCTIONS", functions)
    if queues is not None:
        monkeypatch.setattr(catalog, "QUEUES", queues)


def test_the_shipped_catalog_passes_the_queue_rules() -> None:
    validate_queues()


def test_a_queue_needs_exactly_one_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    _patched(monkeypatch, queues=(*catalog.QUEUES, catalog.QueueSpec("orphan", "knowledge")))
    with pytest.raises(ValueError, match="exactly one consuming function"):
        validate_queues()


def test_a_visibility_timeout_below_the_consumers_timeout_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    (spec,) = [s for s in catalog.QUEUES if s.name == QUEUE_TRIGGERED[0].trigger.queue]  # type: ignore[union-attr]
    short = catalog.QueueSpec(spec.name, spec.domain, visibility_timeout_s=QUEUE_TRIGGERED[0].timeout_s - 1)
    _patched(monkeypatch, queues=tuple(short if s is spec else s for s in catalog.QUEUES))
    with pytest.raises(ValueError, match="visibility timeout"):
        validate_queues()


@pytest.mark.parametrize(("trigger", "message"), [
    (catalog.Queue("ingest", batch_size=20), "batch_size"),
    (catalog.Queue("ingest", batch_size=0), "batch_size"),
    (catalog.Queue("ingest", batch_size=5, max_batching_window_s=301), "max_batching_window_s"),
    (catalog.Queue("no-such-queue"), "unknown queue"),
])
def test_queue_triggers_within_lambdas_limits(trigger: catalog.Queue, message: str) -> None:
    probe = catalog.Function("probe", "functions.platform.health", "platform", trigger)
    with pytest.raises(ValueError, match=message):
        validate_queue_trigger(probe)
    wide = catalog.Function("probe", "functions.platform.health", "platform",
                            catalog.Queue("ingest", batch_size=100, max_batching_window_s=5))
    assert validate_queue_trigger(wide).name == "ingest"
