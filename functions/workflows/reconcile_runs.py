"""Scheduled: end workflow runs whose execution is over (or gone) without a final record, so no
run stays ``running``."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.workflows.wiring_api import workflow_run_service


def _reconcile(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"ended": workflow_run_service().reconcile()}


handler = powertools_handler(_reconcile)
