"""Workflow interpreter task (a Catch): record that a run failed, with the task's error."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.workflows.interpreter import FailureTask
from shared.workflows.wiring import interpreter


def _fail(event: dict[str, Any], context: Any) -> None:
    interpreter().fail(FailureTask.model_validate(event))


handler = powertools_handler(_fail)
