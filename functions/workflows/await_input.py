"""Workflow interpreter task (.waitForTaskToken): keep the token that resumes a run paused
for human input."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.workflows.interpreter import InputTask
from shared.workflows.wiring import interpreter


def _await(event: dict[str, Any], context: Any) -> None:
    interpreter().await_input(InputTask.model_validate(event))


handler = powertools_handler(_await)
