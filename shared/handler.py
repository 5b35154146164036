"""The one fixed decorator stack every function's entry point wears."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.observability import logger, metrics, tracer

Handler = Callable[[Any, Any], Any]


def powertools_handler(fn: Handler, *, correlation_id_path: str | None = None) -> Handler:
    @logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: Any, context: Any) -> Any:
        return fn(event, context)

    return handler
