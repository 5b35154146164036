"""Workflow interpreter task (a child execution of a long iteration's Distributed Map): run one
batch of the iteration's items (docs/adr/0038-long-iterations-distributed-map.md)."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.workflows.interpreter import ItemsTask, interruptible
from shared.workflows.wiring import interpreter


def _items(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = ItemsTask.model_validate(event)
    with interruptible():
        stop = interpreter().run_items(task)
    return {"batch": task.batch.batch, "stop": stop}


handler = powertools_handler(_items)
