"""The maintenance state machines, built with the shared ASL builders."""

from __future__ import annotations

from typing import Any

from shared.stepfunctions.asl import chain, choice, lambda_task, machine, map_state, succeed, when_boolean
from shared.stepfunctions.policies import lambda_retries


def purge_definition() -> dict[str, Any]:
    batches = machine(chain(
        ("PurgeBatch", lambda_task("purge-table", retry_policy=lambda_retries())),
        ("TableDone", choice(when_boolean("$.done", False, "PurgeBatch"), default="Done")),
        ("Done", succeed()),
    ))
    return machine(chain(
        # Children before parents: foreign keys decide the order, hence one table at a time.
        ("Tables", map_state(batches, items_path="$.items", max_concurrency=1, result_path="$.results")),
    ), comment="Purge soft-deleted rows past retention, table by table in foreign-key order")

