"""The knowledge state machines, built with the shared ASL builders. States carry
identifiers and segment ranges only (docs/architecture.md §6.3): texts and vectors stay in PostgreSQL and
the store."""

from __future__ import annotations

from typing import Any

from shared.stepfunctions.asl import (
    ALL_ERRORS,
    DISCARD,
    TASK_FAILED,
    catch,
    chain,
    choice,
    end,
    lambda_task,
    machine,
    map_state,
    pass_state,
    retry,
    succeed,
    when_boolean,
)
from shared.stepfunctions.policies import lambda_retries, task_failed_retry

# Transient failures of a batch: retried with backoff, the batch alone. Error names are the
# Python exception types the task raises (Lambda reports them as errorType).
_BATCH_TRANSIENT = retry(["ProviderRateLimited", "ProviderUnavailable", "ProviderTimeout", "CircuitOpen",
                          "EmbeddingInterrupted", "VectorStoreError", "OperationalError", TASK_FAILED],
                         interval_s=5, max_attempts=3, backoff_rate=3.0)


def ingest_definition() -> dict[str, Any]:
    batch = machine(chain(
        # Each item ends here, or at BatchGaveUp when its retries are exhausted: the batch
        # stays pending and "Finish" fails the document with the error the task recorded;
        # the other batches go on.
        ("EmbedBatch", end(lambda_task("documents-embed-batch", retry_policy=lambda_retries(_BATCH_TRANSIENT),
                                       catch_rules=[catch([ALL_ERRORS], "BatchGaveUp", result_path=DISCARD)]))),
        ("BatchGaveUp", pass_state()),
    ))
    return machine(chain(
        # Bounded: the embedding provider's rate limit is shared by every document.
        ("EmbedBatches", map_state(batch, items_path="$.batches", max_concurrency=4, result_path=DISCARD)),
        ("Finish", lambda_task("documents-finish",
                               payload={"tenant_id.$": "$.tenant_id", "document_id.$": "$.document_id",
                                        "attempt.$": "$.attempt"},
                               retry_policy=lambda_retries())),
    ), comment="Embed a large document's segments in batches, then mark it indexed or failed")


def delete_definition() -> dict[str, Any]:
    return machine(chain(
        ("PurgeBatch", lambda_task("knowledge-bases-purge",
                                   retry_policy=lambda_retries(task_failed_retry(interval_s=10, max_attempts=5)))),
        ("Done?", choice(when_boolean("$.done", False, "PurgeBatch"), default="Deleted")),
        ("Deleted", succeed()),
    ), comment="Remove a deleted knowledge base's vectors, files and rows, batch by batch")
