"""Step Functions in tests: the local runtime's AWS for a module, waiting on executions (moto's)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.aws.clients import client

if TYPE_CHECKING:
    from infra.local.aws import LocalAws


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


@contextmanager
def running_local_aws(state_dir: Path) -> Iterator[LocalAws]:
    """The local runtime's AWS (moto with the catalog's functions and state machines) for one
    test module, the process environment and the cached settings and clients restored after."""
    from infra.local.aws import LocalAws
    from infra.local.invoker import LocalInvoker
    from shared.aws.clients import reset_clients
    from shared.config import reset_settings

    saved_env = dict(os.environ)
    os.environ.setdefault("STRATUS_RUNTIME", "local")
    local = LocalAws(state_dir, LocalInvoker())
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        reset_settings()
        reset_clients()
