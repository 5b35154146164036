"""Retry policies every state machine shares. A domain adds its own error names (the Python
exception types its tasks raise, which Lambda reports as ``errorType``) beside these."""

from __future__ import annotations

from typing import Any, Final

from shared.stepfunctions.asl import TASK_FAILED, TIMEOUT, retry

# Lambda's own transient failures (throttling, service errors) and a task timeout: the
# invocation did not run to an answer, so running it again is safe for idempotent tasks
# (every Step Functions handler is, docs/architecture.md §7.1).
LAMBDA_TRANSIENT_ERRORS: Final = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    TIMEOUT,
)

LAMBDA_TRANSIENT: Final[dict[str, Any]] = retry(LAMBDA_TRANSIENT_ERRORS, interval_s=2, max_attempts=4,
                                                backoff_rate=2.0)


def lambda_retries(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The standard Lambda retry first, then ``extra`` rules (Step Functions tries the rules
    in order and uses the first whose errors match)."""
    return [LAMBDA_TRANSIENT, *extra]


def task_failed_retry(*, interval_s: int, max_attempts: int, backoff_rate: float = 2.0) -> dict[str, Any]:
    """Any error the handler raised (``States.TaskFailed``), for tasks whose every failure is
    worth another attempt (e.g. a purge batch that met a lock)."""
    return retry([TASK_FAILED], interval_s=interval_s, max_attempts=max_attempts, backoff_rate=backoff_rate)
