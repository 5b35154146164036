"""SQS (S3 ObjectCreated events and re-index requests) → index the document.

Powertools batch processing reports failed messages only (``batchItemFailures``): a
transient failure comes back after the visibility timeout, the rest of the batch does not."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from shared.handler import powertools_handler
from shared.knowledge.wiring import ingestion_service

processor = BatchProcessor(event_type=EventType.SQS)


def _record(record: SQSRecord) -> None:
    ingestion_service().handle_message(json.loads(record.body))


def _ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dict(process_partial_response(event=event, record_handler=_record, processor=processor, context=context))


handler = powertools_handler(_ingest)
