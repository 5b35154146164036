"""The local runtime's queues: the catalog's SQS queues (with dead-letter queues) and S3
notifications provisioned in moto, and the pollers that stand in for Lambda's SQS event
source mappings (infra/local/queues.py): the event Lambda sends, partial batch responses,
redrive to the dead-letter queue, and the prefix filter."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from functions import catalog
from infra.local.aws import UPLOADS_BUCKET, LocalAws
from infra.local.invoker import LocalInvoker
from infra.local.queues import LocalQueues, failed_message_ids, sqs_event
from infra.topology import consumer, env_name
from shared.aws.clients import reset_clients
from shared.config import get_settings, reset_settings

INGEST = catalog.queue_by_name("ingest")
CONSUMER = consumer(INGEST)
(NOTIFICATION,) = INGEST.s3_notifications
# Locally shortened so redeliveries take a second (LocalAws caps the AWS value).
# Long enough that a handler plus its deletes finish within it on a loaded 2-core machine.
VISIBILITY_S = 3


@dataclass
class Local:
    state_dir: Path
    invoker: LocalInvoker
    aws: LocalAws


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    saved_env = dict(os.environ)
    state_dir = tmp_path_factory.mktemp("stratus-queues")
    invoker = LocalInvoker()
    aws = LocalAws(state_dir, invoker, queue_visibility_timeout_s=VISIBILITY_S)
    aws.start()
    try:
        yield Local(state_dir, invoker, aws)
    finally:
        aws.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        reset_settings()
        reset_clients()


@dataclass
class Recorder:
    """An injected handler: records every event; ``fail`` names message bodies (by a marker
    they contain) to report in batchItemFailures; ``raise_on`` makes the whole call raise."""

    fail: set[str] = field(default_factory=set)
    raise_on: set[str] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self.lock:
            self.events.append(event)
        assert context.function_name == CONSUMER.name
        bodies = [record["body"] for record in event["Records"]]
        if any(marker in body for marker in self.raise_on for body in bodies):
            raise RuntimeError("injected failure")
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in event["Records"]
                                      if any(marker in record["body"] for marker in self.fail)]}

    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            return [record for event in self.events for record in event["Records"]]

    def with_body(self, marker: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if marker in record["body"]]


def wait_until(predicate: Callable[[], Any], timeout_s: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def pollers(local: Local) -> Iterator[Callable[..., tuple[Recorder, LocalQueues]]]:
    """Start pollers with a Recorder injected for the consumer (or given functions); stopped
    after the test, and the queue purged so tests do not see each other's messages."""
    started: list[LocalQueues] = []

    def start(recorder: Recorder | None = None, functions: tuple[catalog.Function, ...] = (CONSUMER,)
              ) -> tuple[Recorder, LocalQueues]:
        recorder = recorder or Recorder()
        queues = LocalQueues(local.invoker, local.aws, handlers={CONSUMER.name: recorder}, functions=functions)
        queues.start()
        started.append(queues)
        return recorder, queues

    yield start
    for queues in started:
        queues.stop()
    for url in (local.aws.queue_url(INGEST.name), local.aws.dead_letter_queue_url(INGEST.name)):
        _drain(local, url)


def s3_key(record: dict[str, Any]) -> str | None:
    """The object key of an S3 notification record. S3 URL-encodes keys in events (a space is
    "+"); moto also encodes "/", which S3 leaves alone: unquote_plus reads both."""
    body = json.loads(record["body"])
    if "Records" not in body:
        return None
    return unquote_plus(str(body["Records"][0]["s3"]["object"]["key"]))


# Provisioning -------------------------------------------------------------------------------
def test_queues_dlqs_and_settings_follow_the_catalog(local: Local) -> None:
    sqs = local.aws.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=local.aws.queue_url(INGEST.name),
                                          AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == INGEST.max_receive_count
    dlq = sqs.get_queue_attributes(QueueUrl=local.aws.dead_letter_queue_url(INGEST.name),
                                   AttributeNames=["QueueArn", "MessageRetentionPeriod"])["Attributes"]
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert dlq["MessageRetentionPeriod"] == str(14 * 86400)
    assert attributes["VisibilityTimeout"] == str(VISIBILITY_S)
    # The uncapped value is AWS's (six times the consumer's timeout).
    assert LocalAws(local.state_dir, local.invoker, queue_visibility_timeout_s=None).local_visibility_timeout_s(
        INGEST.name) == 6 * CONSUMER.timeout_s

    # What CDK sets on the functions, under the same names, for every queue and state machine.
    for spec in catalog.QUEUES:
        assert os.environ[env_name(spec.name, "QUEUE_URL")] == local.aws.queue_url(spec.name)
    for machine in catalog.STATE_MACHINES:
        assert os.environ[env_name(machine.name, "STATE_MACHINE_ARN")] == local.aws.state_machine_arn(machine.name)
    settings = get_settings()
    assert settings.ingest_queue_url == local.aws.queue_url("ingest")
    assert settings.ingest_state_machine_arn == local.aws.state_machine_arn("ingest")
    assert settings.knowledge_base_delete_state_machine_arn == local.aws.state_machine_arn("knowledge-base-delete")

    notification = local.aws.client("s3").get_bucket_notification_configuration(Bucket=UPLOADS_BUCKET)
    (configuration,) = notification["QueueConfigurations"]
    assert configuration["QueueArn"] == local.aws.queue_arn(INGEST.name)
    assert configuration["Events"] == ["s3:ObjectCreated:*"]
    assert configuration["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": NOTIFICATION.prefix}]


# S3 → SQS → handler ------------------------------------------------------------------------
def test_an_upload_reaches_the_handler_as_lambdas_sqs_event(local: Local, pollers: Callable[..., Any]) -> None:
    recorder, _ = pollers()
    # S3 sends a test message when a notification is configured (LocalAws did at start; once
    # more here): delivered to the function, as in AWS.
    s3 = local.aws.client("s3")
    configuration = s3.get_bucket_notification_configuration(Bucket=UPLOADS_BUCKET)
    s3.put_bucket_notification_configuration(Bucket=UPLOADS_BUCKET, NotificationConfiguration={
        "QueueConfigurations": configuration["QueueConfigurations"]})
    test_events = wait_until(lambda: [r for r in recorder.records() if '"s3:TestEvent"' in r["body"]],
                             what="the s3:TestEvent message")
    assert json.loads(test_events[0]["body"])["Event"] == "s3:TestEvent"

    key = f"{NOTIFICATION.prefix}{uuid.uuid4()}/uploads/report.txt"
    s3.put_object(Bucket=UPLOADS_BUCKET, Key=key, Body=b"hello")
    event = wait_until(lambda: next((e for e in list(recorder.events)
                                     if any(s3_key(r) == key for r in e["Records"])), None),
                       what="the ObjectCreated event")
    (record,) = event["Records"]  # batch_size 1
    assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "eventSource", "eventSourceARN", "awsRegion"}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == local.aws.queue_arn(INGEST.name)
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(record["attributes"])
    (s3_record,) = json.loads(record["body"])["Records"]
    assert s3_record["eventSource"] == "aws:s3"
    assert s3_record["eventName"].startswith("ObjectCreated:")
    assert s3_record["s3"]["bucket"]["name"] == UPLOADS_BUCKET
    assert s3_record["s3"]["object"]["size"] == 5
    # Success: the message is deleted, never redelivered.
    time.sleep(VISIBILITY_S + 1.5)
    assert len([r for r in recorder.records() if s3_key(r) == key]) == 1
    wait_until(lambda: _queue_depth(local, local.aws.queue_url(INGEST.name)) == 0, what="an empty queue")


def test_objects_outside_the_prefix_produce_no_event(local: Local, pollers: Callable[..., Any]) -> None:
    recorder, _ = pollers()
    s3 = local.aws.client("s3")
    outside = f"elsewhere/{uuid.uuid4()}.txt"
    marker = f"{NOTIFICATION.prefix}{uuid.uuid4()}/marker.txt"
    s3.put_object(Bucket=UPLOADS_BUCKET, Key=outside, Body=b"x")
    s3.put_object(Bucket=UPLOADS_BUCKET, Key=marker, Body=b"x")
    wait_until(lambda: any(s3_key(r) == marker for r in recorder.records()), what="the marker's event")
    # (The poller deletes the marker once the handler has returned.)
    wait_until(lambda: _queue_depth(local, local.aws.queue_url(INGEST.name)) == 0, what="an empty queue")
    assert not any(s3_key(r) == outside for r in recorder.records())


# Partial batch responses and redrive ----------------------------------------------------------
def test_a_partial_failure_redelivers_only_the_failed_message(local: Local, pollers: Callable[..., Any]) -> None:
    sqs = local.aws.client("sqs")
    url = local.aws.queue_url(INGEST.name)
    _drain(local, url)
    run = uuid.uuid4().hex
    bodies = [f"{run}-good-1", f"{run}-bad", f"{run}-good-2"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body,
                         MessageAttributes={"kind": {"DataType": "String", "StringValue": "probe"}})
    # A consumer taking batches of five, so one invocation holds all three messages.
    batched = dataclasses.replace(CONSUMER, trigger=catalog.Queue(INGEST.name, batch_size=5, max_batching_window_s=1))
    recorder, _ = pollers(Recorder(fail={f"{run}-bad"}), functions=(batched,))
    wait_until(lambda: len(recorder.with_body(f"{run}-bad")) >= 2, what="the failed message's redelivery")
    first = recorder.events[0]["Records"]
    assert sorted(r["body"] for r in first) == sorted(bodies), "one batch of three"
    assert first[0]["messageAttributes"]["kind"] == {"stringValue": "probe", "stringListValues": [],
                                                      "binaryListValues": [], "dataType": "String"}
    assert "md5OfMessageAttributes" in first[0]
    second = recorder.events[1]["Records"]
    assert [r["body"] for r in second] == [f"{run}-bad"]
    assert second[0]["attributes"]["ApproximateReceiveCount"] == "2"
    for good in (f"{run}-good-1", f"{run}-good-2"):
        assert len(recorder.with_body(good)) == 1, f"{good} was deleted after its success"


def test_a_message_failing_max_receive_count_times_ends_in_the_dead_letter_queue(
        local: Local, pollers: Callable[..., Any]) -> None:
    sqs = local.aws.client("sqs")
    url, dlq_url = local.aws.queue_url(INGEST.name), local.aws.dead_letter_queue_url(INGEST.name)
    _drain(local, url)
    poison = f"{uuid.uuid4().hex}-poison"
    sqs.send_message(QueueUrl=url, MessageBody=poison)
    # The handler raises: the whole batch fails, nothing is deleted.
    recorder, _ = pollers(Recorder(raise_on={poison}))
    # (VisibilityTimeout 0: looking leaves it there for the clean-up.)
    dead = wait_until(lambda: sqs.receive_message(QueueUrl=dlq_url, VisibilityTimeout=0).get("Messages"),
                      timeout_s=30, what="the message in the dead-letter queue")
    assert [m["Body"] for m in dead] == [poison]
    deliveries = recorder.with_body(poison)
    assert [r["attributes"]["ApproximateReceiveCount"] for r in deliveries] == [
        str(n) for n in range(1, INGEST.max_receive_count + 1)]
    assert _queue_depth(local, url) == 0


def test_pollers_stop_promptly(local: Local) -> None:
    queues = LocalQueues(local.invoker, local.aws, handlers={CONSUMER.name: Recorder()})
    queues.start()
    assert set(queues.pollers) == {fn.name for fn in catalog.FUNCTIONS if isinstance(fn.trigger, catalog.Queue)}
    time.sleep(0.3)
    started = time.monotonic()
    queues.stop()
    assert time.monotonic() - started < 5
    assert not [t for t in threading.enumerate() if t.name.startswith("sqs-poller-")]


# The response rules (as Lambda reads a ReportBatchItemFailures answer) ------------------------
@pytest.mark.parametrize(("response", "expected"), [
    (None, set()),
    ({}, set()),
    ({"batchItemFailures": None}, set()),
    ({"batchItemFailures": []}, set()),
    ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
    ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
    ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
    ({"batchItemFailures": [{"id": "b"}]}, None),
    ({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, None),
    ({"batchItemFailures": "b"}, None),
    ("ok", None),
])
def test_batch_item_failures_follow_lambdas_rules(response: Any, expected: set[str] | None) -> None:
    assert failed_message_ids(response, ["a", "b"]) == expected


def test_event_matches_the_sample_event_shape(repo_root: Path) -> None:
    sample = json.loads((repo_root / "events" / "sqs_s3_object_created.json").read_text())["Records"][0]
    message = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": sample["body"], "MD5OfBody": sample["md5OfBody"],
               "Attributes": sample["attributes"]}
    (record,) = sqs_event([message], sample["eventSourceARN"], sample["awsRegion"])["Records"]
    assert list(record) == list(sample)
    assert {k: v for k, v in record.items() if k not in {"messageId", "receiptHandle"}} == {
        k: v for k, v in sample.items() if k not in {"messageId", "receiptHandle"}}


def _drain(local: Local, url: str) -> None:
    """Empty a queue (PurgeQueue is allowed once a minute): delete what is visible until nothing
    is left in flight either."""
    sqs = local.aws.client("sqs")
    deadline = time.monotonic() + 10
    while _queue_depth(local, url) and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert _queue_depth(local, url) == 0


def _queue_depth(local: Local, url: str) -> int:
    attributes = local.aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
