"""Workflow interpreter task: carry a run on in a fresh execution before the history limit."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.workflows.interpreter import LoopState, continue_as_new
from shared.workflows.wiring import executions


def _continue(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Only the state machine is needed here: not the run store, not the engine.
    started = executions()
    if started is None:
        raise RuntimeError("WORKFLOW_RUN_STATE_MACHINE_ARN is not set")
    return {"execution_arn": continue_as_new(started, LoopState.model_validate(event))}


handler = powertools_handler(_continue)
