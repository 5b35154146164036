"""The one fixed decorator stack every function's entry point wears."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.observability import logger, metrics, tracer

Handler = Callable[[Any, Any], Any]


def _decorate(fn: Handler, correlation_id_path: str | None) -> Handler:
    from shared.config import check_function_settings, get_settings

    # A deployed function missing a setting its catalog entry requires fails here, naming the
    # variable, rather than on the first request that happens to need it. Until it passes, every
    # invocation fails the same way (nothing is cached).
    check_function_settings()
    # Powertools prints the cold-start metric even when metrics are disabled; ask for it
    # only when they are on (in AWS), so local output and `make invoke` stay clean.
    cold_start = not get_settings().powertools_metrics_disabled

    @logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=cold_start)
    def handler(event: Any, context: Any) -> Any:
        return fn(event, context)

    return handler


def powertools_handler(fn: Handler, *, correlation_id_path: str | None = None) -> Handler:
    """Wrap ``fn`` in the logger, tracer and metrics decorators (built on the first
    invocation, when the settings are read and checked: nothing happens at import)."""
    decorated: Handler | None = None

    def handler(event: Any, context: Any) -> Any:
        nonlocal decorated
        if decorated is None:
            decorated = _decorate(fn, correlation_id_path)
        return decorated(event, context)

    return handler
