"""Workflow interpreter task (a Map item): run one dispatched node of a run."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.workflows.interpreter import BranchTask, interruptible
from shared.workflows.wiring import interpreter


def _branch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = BranchTask.model_validate(event)
    with interruptible():
        interpreter().run_branch(task)
    return {"node_id": task.node_id}


handler = powertools_handler(_branch)
