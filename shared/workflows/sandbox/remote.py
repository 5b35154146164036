"""The sandbox in AWS: the ``workflow-code`` function (functions/workflows/run_code.py), invoked
synchronously. It answers ``{"outputs", "stdout", ...}`` or ``{"error": CodeError.to_wire()}``;
when Lambda itself fails the invocation (timeout, out of memory, throttling) the failure maps
to the same CodeError classes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from shared.workflows.sandbox.ports import (
    CodeError,
    CodeInputInvalid,
    CodeMemoryExceeded,
    CodeRequest,
    CodeRun,
    CodeSandboxUnavailable,
    CodeTimeout,
    error_from_wire,
)

logger = logging.getLogger(__name__)

# Lambda's error codes for an invocation it refused before running anything.
_THROTTLED = {"TooManyRequestsException", "EC2ThrottledException", "ThrottlingException"}
_TOO_LARGE = {"RequestEntityTooLargeException"}


class LambdaCodeRunner:
    """``client_factory`` gives the boto3 Lambda client (called on the first run);
    ``function_name`` is the sandbox function's name or ARN."""

    def __init__(self, client_factory: Callable[[], Any], function_name: str) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self.function_name = function_name

    def run(self, request: CodeRequest) -> dict[str, Any]:
        return self.execute(request).outputs

    def execute(self, request: CodeRequest) -> CodeRun:
        from botocore.exceptions import BotoCoreError, ClientError

        payload = request.encoded()
        if self._client is None:
            self._client = self._client_factory()
        try:
            response = self._client.invoke(FunctionName=self.function_name, InvocationType="RequestResponse",
                                           Payload=payload)
            body = response["Payload"].read()
        except ClientError as exc:
            raise _refused(exc.response.get("Error", {})) from exc
        except BotoCoreError as exc:
            raise CodeSandboxUnavailable(f"the code sandbox could not be reached ({exc}); run the node again",
                                         cause=type(exc).__name__) from exc
        if response.get("FunctionError"):
            raise _function_error(body, request)
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise CodeSandboxUnavailable("the code sandbox answered with something other than a JSON object; "
                                         "run the node again, and report it if it persists")
        if "error" in answer:
            raise error_from_wire(answer["error"])
        outputs = answer.get("outputs")
        if not isinstance(outputs, dict):
            raise CodeSandboxUnavailable("the code sandbox answered without outputs; run the node again, and "
                                         "report it if it persists")
        stdout = answer.get("stdout")
        return CodeRun(outputs=outputs, stdout=stdout if isinstance(stdout, str) else "",
                       stdout_truncated=answer.get("stdout_truncated") is True,
                       cpu_ms=_int(answer.get("cpu_ms")), elapsed_ms=_int(answer.get("elapsed_ms")))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _refused(error: dict[str, Any]) -> CodeError:
    code = str(error.get("Code", ""))
    if code in _THROTTLED:
        return CodeSandboxUnavailable("the code sandbox is busy (Lambda throttled the invocation); run the node "
                                      "again in a moment", cause=code)
    if code in _TOO_LARGE:
        return CodeInputInvalid("the code and its inputs are too large for the sandbox's invocation (Lambda takes "
                                "6 MB); pass smaller inputs")
    return CodeSandboxUnavailable(f"the code sandbox could not be invoked ({code}: {error.get('Message', '')}); "
                                  "run the node again, and report it if it persists", cause=code)


def _function_error(body: bytes, request: CodeRequest) -> CodeError:
    """Lambda failed the invocation itself: ``{"errorType", "errorMessage"}``."""
    try:
        failure = json.loads(body)
    except ValueError:
        failure = {}
    if not isinstance(failure, dict):
        failure = {}
    error_type = str(failure.get("errorType", ""))
    message = str(failure.get("errorMessage", ""))
    limits = request.limits
    # "Sandbox.Timedout" / "Task timed out after 45.00 seconds": the function's own timeout.
    if "Timedout" in error_type or "timed out" in message:
        return CodeTimeout(f"the code sandbox timed out before the code's {limits.wall_seconds} s were up; "
                           "make the code finish sooner", limit="wall", seconds=limits.wall_seconds)
    # The function ran out of memory (the code's own limit is far below the function's).
    if error_type == "Runtime.OutOfMemory" or "signal: killed" in message:
        return CodeMemoryExceeded(f"the code sandbox ran out of memory running code limited to {limits.memory_mb} "
                                  "MiB; process less data per run", memory_mb=limits.memory_mb)
    logger.warning("code sandbox function failed: %s: %s", error_type, message[:500])
    return CodeSandboxUnavailable(f"the code sandbox failed ({error_type or 'unknown error'}); run the node again, "
                                  "and report it if it persists", cause=error_type or None)
