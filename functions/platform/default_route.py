"""The ``$default`` route: unknown paths answer 404 and known paths with the wrong method
405 (with ``Allow``), both in the error envelope."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from shared.handler import powertools_handler
from shared.http.api import request_id_of
from shared.http.envelope import error_result
from shared.http.routing import unmatched_route_error


def _answer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    http = (event.get("requestContext") or {}).get("http") or {}
    error = unmatched_route_error(str(http.get("method", "")), str(event.get("rawPath") or http.get("path", "")))
    return error_result(error, request_id_of(event))


handler = powertools_handler(_answer, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
