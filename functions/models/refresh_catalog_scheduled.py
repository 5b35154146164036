"""Scheduled: the same catalog refresh as POST /api/v1/models/refresh."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.models.wiring import model_service


def _refresh(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return model_service().refresh().model_dump(mode="json")


handler = powertools_handler(_refresh)
