"""Scheduled: fail chat answers stuck in ``running`` and close their event streams."""

from __future__ import annotations

from typing import Any

from shared.chat.wiring import chat_service
from shared.handler import powertools_handler


def _reap(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"reaped": chat_service().reap()}


handler = powertools_handler(_reap)
