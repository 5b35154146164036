"""Step Functions task: purge one table's soft-deleted rows, in batches, until done or
the invocation's time runs short (the state machine loops while ``done`` is false)."""

from __future__ import annotations

from typing import Any

from shared.db.database import get_database
from shared.handler import powertools_handler
from shared.maintenance.purge import PurgeItem, PurgeService


def _purge(event: dict[str, Any], context: Any) -> dict[str, Any]:
    item = PurgeItem.model_validate(event)
    result = PurgeService(get_database()).purge(item, context.get_remaining_time_in_millis)
    return result.model_dump(mode="json")


handler = powertools_handler(_purge)
