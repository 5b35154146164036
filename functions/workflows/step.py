"""Workflow interpreter task: run the ready nodes of a run and say what comes next."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.workflows.interpreter import LoopState, interruptible
from shared.workflows.wiring import interpreter


def _step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with interruptible():
        return interpreter().step(LoopState.model_validate(event)).model_dump(mode="json")


handler = powertools_handler(_step)
