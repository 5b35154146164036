"""The local stand-in for Lambda's SQS event source mappings: one poller thread per catalog
function with a ``Queue`` trigger, feeding it the event Lambda sends
(``events/sqs_s3_object_created.json``) through the runtime's :class:`LocalInvoker`.

As Lambda does with ``ReportBatchItemFailures`` (infra/functions.py):

- up to the trigger's ``batch_size`` messages per invocation (at most 10 per ReceiveMessage;
  with a batching window, receives continue until the batch is full or the window passed);
- messages the response lists in ``batchItemFailures`` stay in the queue and come back after
  the visibility timeout; the others are deleted. A response Lambda would call invalid (an
  ``itemIdentifier`` missing, empty or not in the batch; a ``batchItemFailures`` that is not a
  list; an answer that is not an object) and a handler exception fail the whole batch:
  nothing is deleted;
- after ``max_receive_count`` receives, SQS (moto does it too, on the next receive) moves a
  message to the queue's dead-letter queue;
- S3's ``s3:TestEvent`` message, sent when the notification is configured, is delivered to
  the function like any other message: Lambda does not filter it, and the handler ignores it.

Long polls are short (``wait_time_s``, 1 s) so that stopping is quick; stopping waits for a
batch in flight up to ``stop``'s timeout.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from functions.catalog import FUNCTIONS, Function, Queue
from infra.local.invoker import FunctionError, LocalContext, LocalInvoker

if TYPE_CHECKING:
    from infra.local.aws import LocalAws

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]
# SQS returns at most this many messages per ReceiveMessage (and deletes as many per batch).
MAX_RECEIVE = 10


# --- The event ----------------------------------------------------------------------------


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """boto3's MessageAttributeValue → Lambda's camel-case form (binary values base64)."""
    converted: dict[str, Any] = {}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    converted["stringListValues"] = list(value.get("StringListValues", []))
    converted["binaryListValues"] = [base64.b64encode(v).decode("ascii") for v in value.get("BinaryListValues", [])]
    converted["dataType"] = value["DataType"]
    return converted


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received message as a record of Lambda's SQS event."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {name: str(value) for name, value in message.get("Attributes", {}).items()},
        "messageAttributes": {name: _message_attribute(value)
                              for name, value in message.get("MessageAttributes", {}).items()},
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    })
    return record


def sqs_event(messages: Iterable[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [sqs_record(message, queue_arn, region) for message in messages]}


def failed_message_ids(response: Any, batch: Iterable[str]) -> set[str] | None:
    """The messages a ``ReportBatchItemFailures`` response says failed; None when Lambda would
    treat the response as invalid and so the whole batch as failed."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids = set(batch)
    failed = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return None
        failed.add(identifier)
    return failed


# --- Pollers ------------------------------------------------------------------------------


class QueuePoller:
    """Feeds one function from its queue; :meth:`poll_once` is one receive-invoke-delete cycle."""

    def __init__(self, fn: Function, aws: LocalAws, invoke: Callable[[str, Any], Any], *,
                 wait_time_s: int = 1) -> None:
        trigger = fn.trigger
        assert isinstance(trigger, Queue)
        self.fn = fn
        self.trigger = trigger
        self._invoke = invoke
        self._wait_time_s = wait_time_s
        self._sqs = aws.client("sqs")
        self._queue_url = aws.queue_url(trigger.queue)
        self._queue_arn = aws.queue_arn(trigger.queue)
        self._region = self._queue_arn.split(":")[3]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _receive(self, count: int, wait_time_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=min(count, MAX_RECEIVE), WaitTimeSeconds=wait_time_s,
            AttributeNames=["All"], MessageAttributeNames=["All"])
        return list(response.get("Messages", []))

    def _batch(self) -> list[dict[str, Any]]:
        batch = self._receive(self.trigger.batch_size, self._wait_time_s)
        window = self.trigger.max_batching_window_s
        if not batch or not window:
            return batch
        deadline = time.monotonic() + window
        while len(batch) < self.trigger.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            received = self._receive(self.trigger.batch_size - len(batch), min(self._wait_time_s, int(remaining)))
            if not received:
                self._stop.wait(min(0.1, remaining))
            batch += received
        return batch

    def poll_once(self) -> int:
        """Receive one batch, invoke the function with it, delete what succeeded; returns the
        number of messages received."""
        batch = self._batch()
        if not batch:
            return 0
        ids = [message["MessageId"] for message in batch]
        try:
            response = self._invoke(self.fn.name, sqs_event(batch, self._queue_arn, self._region))
        except FunctionError as exc:
            logger.warning("%s failed on %d messages from %s (they return after the visibility timeout): %s: %s",
                           self.fn.name, len(batch), self.trigger.queue, exc.error_type, exc.error_message)
            return len(batch)
        failed = failed_message_ids(response, ids)
        if failed is None:
            logger.warning("%s answered an invalid batchItemFailures response; the whole batch of %d fails: %r",
                           self.fn.name, len(batch), response)
            return len(batch)
        if failed:
            logger.info("%s reported %d of %d messages from %s failed", self.fn.name, len(failed), len(batch),
                        self.trigger.queue)
        done = [message for message in batch if message["MessageId"] not in failed]
        for start in range(0, len(done), MAX_RECEIVE):
            chunk = done[start:start + MAX_RECEIVE]
            result = self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]} for i, message in enumerate(chunk)])
            for error in result.get("Failed", []):
                logger.warning("could not delete a processed message of %s: %s", self.trigger.queue, error)
        return len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                # The local SQS endpoint going away (stop) or a bug here: say so, back off.
                if not self._stop.is_set():
                    logger.exception("poller of %s failed; retrying", self.fn.name)
                self._stop.wait(1.0)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"sqs-poller-{self.fn.name}", daemon=True)
            self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        """Wait for the thread; False if a batch was still running at the timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        stopped = not self._thread.is_alive()
        self._thread = None
        return stopped


class LocalQueues:
    """One :class:`QueuePoller` per ``Queue``-triggered catalog function.

    ``handlers`` (function name → ``handler(event, context)``) replaces catalog handlers, for
    tests; those calls are serialised per function here, as the invoker serialises its own.
    """

    def __init__(self, invoker: LocalInvoker, aws: LocalAws, *, handlers: Mapping[str, Handler] | None = None,
                 functions: Iterable[Function] = FUNCTIONS, wait_time_s: int = 1) -> None:
        self._invoker = invoker
        self._handlers = dict(handlers or {})
        self._locks = {name: threading.Lock() for name in self._handlers}
        self.pollers = {fn.name: QueuePoller(fn, aws, self._invoke, wait_time_s=wait_time_s)
                        for fn in functions if isinstance(fn.trigger, Queue)}

    def _invoke(self, name: str, event: Any) -> Any:
        handler = self._handlers.get(name)
        if handler is None:
            return self._invoker.invoke(name, event)
        fn = self._invoker.function(name)
        with self._locks[name]:
            try:
                return handler(event, LocalContext(fn.name, fn.memory_mb, fn.timeout_s))
            except Exception as exc:
                raise FunctionError(name, type(exc).__name__, str(exc)) from exc

    def start(self) -> None:
        for poller in self.pollers.values():
            poller.start()
        if self.pollers:
            logger.info("polling queues for %s", ", ".join(sorted(self.pollers)))

    def stop(self, timeout_s: float = 30.0) -> None:
        for poller in self.pollers.values():
            poller.request_stop()
        deadline = time.monotonic() + timeout_s
        for name, poller in self.pollers.items():
            if not poller.join(max(0.0, deadline - time.monotonic())):
                logger.warning("%s was still handling a batch at stop; its messages return to the queue", name)
