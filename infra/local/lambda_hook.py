"""Routes moto's Lambda invocations to the catalog's handlers, in-process.

moto's Docker-less Lambda backend (``LambdaSimpleBackend``) only echoes the payload. The
local runtime replaces its ``invoke`` method so that Step Functions Lambda tasks (moto's
interpreter calls Lambda over HTTP on ``MOTO_PORT``) and direct ``lambda.invoke`` calls run
the real handler through :class:`LocalInvoker`. This patches a private moto method, which is
why moto is pinned exactly (docs/adr/0003-moto-local-aws.md).
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from typing import Any

from infra.local.invoker import FunctionError, LocalInvoker

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_original_invoke: Any = None


def function_name_of(function_name: str) -> str:
    """The function's name from what a caller may pass Lambda: a name, ``name:qualifier``,
    a partial ARN (``123456789012:function:name``) or a full ARN (name is field 6)."""
    parts = function_name.split(":")
    if parts[0] == "arn" and len(parts) >= 7:
        return parts[6]
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2]
    return parts[0]


def _decode_event(body: Any) -> Any:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8")
    if not body:
        # Lambda hands a handler an empty object when the caller sent no payload.
        return {}
    return json.loads(body)


def _error_payload(error_type: str, message: str, stack: list[str] | None = None) -> bytes:
    payload: dict[str, Any] = {"errorType": error_type, "errorMessage": message}
    if stack:
        payload["stackTrace"] = stack
    return json.dumps(payload).encode("utf-8")


def _run(invoker: LocalInvoker, name: str, event: Any, response_headers: dict[str, Any]) -> bytes:
    try:
        result = invoker.invoke(name, event)
    except FunctionError as exc:
        # As AWS reports an uncaught exception: the header marks the failure, the body
        # carries errorType, on which Step Functions' Retry and Catch match.
        cause = exc.__cause__
        stack = traceback.format_tb(cause.__traceback__) if cause is not None else None
        logger.warning("function %s failed: %s: %s", name, exc.error_type, exc.error_message,
                       exc_info=cause if cause is not None else exc)
        response_headers["x-amz-function-error"] = "Unhandled"
        return _error_payload(exc.error_type, exc.error_message, stack)
    try:
        return json.dumps(result).encode("utf-8")
    except (TypeError, ValueError) as exc:
        response_headers["x-amz-function-error"] = "Unhandled"
        return _error_payload("Runtime.MarshalError", f"Unable to marshal response: {exc}")


def _hooked_invoke(invoker: LocalInvoker) -> Any:
    from moto.awslambda.exceptions import LambdaClientError

    def invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
               response_headers: dict[str, Any]) -> bytes | None:
        # moto's own lookup first: an unknown function answers 404 ResourceNotFound, as in AWS.
        self.get_function(function_name, qualifier)
        name = function_name_of(function_name)
        try:
            event = _decode_event(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LambdaClientError("InvalidRequestContentException",
                                    f"Could not parse request body into json: {exc}") from exc
        try:
            invoker.function(name)
        except LookupError as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload("Runtime.HandlerNotFound", str(exc))
        invocation_type = (headers.get("X-Amz-Invocation-Type") if headers is not None else None) or ""
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            # Asynchronous invocation: answer 202 at once and run the handler on its own
            # thread; a failure is only logged (no local dead-letter queue).
            def run_async() -> None:
                _run(invoker, name, event, {})

            threading.Thread(target=run_async, name=f"lambda-event-{name}", daemon=True).start()
            return b""
        payload = _run(invoker, name, event, response_headers)
        response_headers["Content-Length"] = str(len(payload))
        return payload

    return invoke


def install_lambda_hook(invoker: LocalInvoker) -> None:
    """Make moto's Docker-less Lambda backend run catalog handlers through ``invoker``.
    Process-wide (the backend class is patched); :func:`uninstall_lambda_hook` undoes it."""
    global _original_invoke
    from moto.awslambda_simple.models import LambdaSimpleBackend

    with _lock:
        if _original_invoke is None:
            _original_invoke = LambdaSimpleBackend.invoke
        LambdaSimpleBackend.invoke = _hooked_invoke(invoker)  # type: ignore[method-assign]


def uninstall_lambda_hook() -> None:
    global _original_invoke
    from moto.awslambda_simple.models import LambdaSimpleBackend

    with _lock:
        if _original_invoke is not None:
            LambdaSimpleBackend.invoke = _original_invoke  # type: ignore[method-assign]
            _original_invoke = None
