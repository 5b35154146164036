"""ASL of the maintenance state machines. Lambda ARNs are ``${fn:<name>}`` placeholders,
filled in by CDK and by the local runtime. Only constructs that moto's interpreter runs
correctly are used (no JSONata, variables, array indexing or filters in paths)."""

from __future__ import annotations

from typing import Any

_RETRY_LAMBDA = [{
    "ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException", "States.Timeout"],
    "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 2.0,
}]


def purge_definition() -> dict[str, Any]:
    return {
        "Comment": "Purge soft-deleted rows past retention, table by table in foreign-key order",
        "StartAt": "Tables",
        "States": {
            "Tables": {
                "Type": "Map",
                "ItemsPath": "$.items",
                # Children before parents: foreign keys decide the order.
                "MaxConcurrency": 1,
                "Iterator": {
                    "StartAt": "PurgeBatch",
                    "States": {
                        "PurgeBatch": {
                            "Type": "Task",
                            "Resource": "${fn:purge-table}",
                            "Retry": _RETRY_LAMBDA,
                            "Next": "TableDone",
                        },
                        "TableDone": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.done", "BooleanEquals": False, "Next": "PurgeBatch"}],
                            "Default": "Done",
                        },
                        "Done": {"Type": "Succeed"},
                    },
                },
                "ResultPath": "$.results",
                "End": True,
            },
        },
    }
