"""Runs catalog functions in-process the way Lambda runs them: each function is imported
on first use (its cold start) and handles one event at a time, like one container."""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from functions.catalog import Function, by_name


@dataclass
class LocalContext:
    """The attributes of ``LambdaContext`` that Powertools and our handlers read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "local"
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """A handler raised: carries the error type the way Lambda reports it."""

    def __init__(self, function: str, error_type: str, message: str) -> None:
        super().__init__(f"{function}: {error_type}: {message}")
        self.function = function
        self.error_type = error_type
        self.error_message = message


# Function modules are imported one at a time, whoever imports them (the invoker's threads,
# the gateway mounting the streaming apps): two threads importing the same packages at once
# can see them partially initialised (Powertools' data classes did).
IMPORT_LOCK = threading.RLock()


def import_function_module(module: str) -> Any:
    with IMPORT_LOCK:
        return importlib.import_module(module)


class LocalInvoker:
    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._locks: dict[str, threading.Lock] = {name: threading.Lock() for name in by_name()}

    def function(self, name: str) -> Function:
        try:
            return by_name()[name]
        except KeyError:
            raise LookupError(f"no function named {name!r} in the catalog") from None

    def handler(self, name: str) -> Callable[[Any, Any], Any]:
        handler = self._handlers.get(name)
        if handler is None:
            with IMPORT_LOCK:
                handler = self._handlers.get(name)
                if handler is None:
                    module = import_function_module(self.function(name).module)
                    handler = self._handlers[name] = module.handler
        return handler

    def invoke(self, name: str, event: Any) -> Any:
        """Invoke ``name`` with ``event``; raises FunctionError if the handler raised."""
        fn = self.function(name)
        handler = self.handler(name)
        context = LocalContext(fn.name, fn.memory_mb, fn.timeout_s)
        # One event at a time per function, as in one Lambda container: handlers keep
        # per-invocation state (Powertools' resolver) on module-level objects.
        with self._locks[name]:
            try:
                return handler(event, context)
            except Exception as exc:
                raise FunctionError(name, type(exc).__name__, str(exc)) from exc
