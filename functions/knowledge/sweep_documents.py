"""Scheduled: retry, then fail, documents whose indexing stopped moving."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.knowledge.wiring import ingestion_service


def _sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return ingestion_service().sweep()


handler = powertools_handler(_sweep)
