"""Scheduled daily: start the purge state machine over every retention table."""

from __future__ import annotations

from typing import Any

from shared.aws.clients import client
from shared.config import get_settings
from shared.db.database import get_database
from shared.handler import powertools_handler
from shared.maintenance.purge import PurgeService, start_purge, utc_now


def _start(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    if not settings.purge_state_machine_arn:
        raise RuntimeError("PURGE_STATE_MACHINE_ARN is not set")
    now = utc_now()
    items = PurgeService(get_database()).plan(now, settings.retention_days, settings.purge_batch_size)
    execution_arn = start_purge(client("stepfunctions"), settings.purge_state_machine_arn, items, now)
    return {"execution_arn": execution_arn, "tables": [item.table for item in items]}


handler = powertools_handler(_start)
