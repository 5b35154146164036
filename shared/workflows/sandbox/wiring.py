"""This container's code runner: the sandbox function when the settings name it
(``WORKFLOW_CODE_FUNCTION_NAME``, set by CDK on the functions that run code nodes), else a local
child process (the local runtime, tests)."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from shared.workflows.sandbox.ports import SANDBOX_TIMEOUT_S, CodeRunner

_lock = threading.Lock()
_runner: CodeRunner | None = None


def code_runner() -> CodeRunner:
    global _runner
    with _lock:
        if _runner is None:
            from shared.config import get_settings

            function = get_settings().workflow_code_function_name
            if function:
                from shared.workflows.sandbox.remote import LambdaCodeRunner

                _runner = LambdaCodeRunner(_lambda_client, function)
            else:
                from shared.workflows.sandbox.local import SubprocessCodeRunner

                _runner = SubprocessCodeRunner()
        return _runner


def use_code_runner(runner: CodeRunner | None) -> None:
    """Hand in a runner (tests), or None to choose again from the settings."""
    global _runner
    with _lock:
        _runner = runner


@cache
def _lambda_client() -> Any:
    import boto3
    from botocore.config import Config

    # The read timeout outlasts the sandbox function's own, so a retried invocation (throttling,
    # connection errors) never runs code that is still running.
    config = Config(connect_timeout=5, read_timeout=SANDBOX_TIMEOUT_S + 15,
                    retries={"max_attempts": 3, "mode": "standard"})
    return boto3.session.Session().client("lambda", config=config)
