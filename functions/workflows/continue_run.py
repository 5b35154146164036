"""Workflow interpreter task: carry a run on in a fresh execution before the history limit."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.workflows.interpreter import LoopState
from shared.workflows.wiring import interpreter


def _continue(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"execution_arn": interpreter().continue_as_new(LoopState.model_validate(event))}


handler = powertools_handler(_continue)
