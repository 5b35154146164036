"""Waiting on Step Functions executions (moto's, in tests)."""

from __future__ import annotations

import time
from typing import Any

from shared.aws.clients import client


def wait_for_execution(execution_arn: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """DescribeExecution until the execution leaves RUNNING (fails the test past ``timeout_s``)."""
    sfn = client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        assert time.monotonic() < deadline, f"{execution_arn} still RUNNING after {timeout_s} s"
        time.sleep(0.1)
