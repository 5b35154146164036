"""ASL of the knowledge state machines. Lambda ARNs are ``${fn:<name>}`` placeholders (CDK
and the local runtime fill them in). Only what moto's interpreter runs correctly is used
(no JSONata, variables, array indexing or filters in paths). States carry identifiers and
segment ranges only (DESIGN §6): texts and vectors stay in PostgreSQL and the store."""

from __future__ import annotations

from typing import Any

from shared.maintenance.state_machines import _RETRY_LAMBDA

# Transient failures of a batch: retried with backoff, the batch alone. Error names are the
# Python exception types the task raises (Lambda reports them as errorType).
_RETRY_TRANSIENT = [
    *_RETRY_LAMBDA,
    {"ErrorEquals": ["ProviderRateLimited", "ProviderUnavailable", "ProviderTimeout", "CircuitOpen",
                     "EmbeddingInterrupted", "VectorStoreError", "OperationalError", "States.TaskFailed"],
     "IntervalSeconds": 5, "MaxAttempts": 3, "BackoffRate": 3.0},
]


def ingest_definition() -> dict[str, Any]:
    return {
        "Comment": "Embed a large document's segments in batches, then mark it indexed or failed",
        "StartAt": "EmbedBatches",
        "States": {
            "EmbedBatches": {
                "Type": "Map",
                "ItemsPath": "$.batches",
                # Bounded: the embedding provider's rate limit is shared by every document.
                "MaxConcurrency": 4,
                "Iterator": {
                    "StartAt": "EmbedBatch",
                    "States": {
                        "EmbedBatch": {
                            "Type": "Task",
                            "Resource": "${fn:documents-embed-batch}",
                            "Retry": _RETRY_TRANSIENT,
                            # Retries exhausted: the batch stays pending and "Finish" fails the
                            # document with the error the task recorded; the other batches go on.
                            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "BatchGaveUp"}],
                            "End": True,
                        },
                        "BatchGaveUp": {"Type": "Pass", "End": True},
                    },
                },
                "ResultPath": None,
                "Next": "Finish",
            },
            "Finish": {
                "Type": "Task",
                "Resource": "${fn:documents-finish}",
                "Parameters": {"tenant_id.$": "$.tenant_id", "document_id.$": "$.document_id",
                               "attempt.$": "$.attempt"},
                "Retry": _RETRY_LAMBDA,
                "End": True,
            },
        },
    }


def delete_definition() -> dict[str, Any]:
    return {
        "Comment": "Remove a deleted knowledge base's vectors, files and rows, batch by batch",
        "StartAt": "PurgeBatch",
        "States": {
            "PurgeBatch": {
                "Type": "Task",
                "Resource": "${fn:knowledge-bases-purge}",
                "Retry": [*_RETRY_LAMBDA, {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 10,
                                           "MaxAttempts": 5, "BackoffRate": 2.0}],
                "Next": "Done?",
            },
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "BooleanEquals": False, "Next": "PurgeBatch"}],
                "Default": "Deleted",
            },
            "Deleted": {"Type": "Succeed"},
        },
    }
