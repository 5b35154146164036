"""The ``$default`` route: unknown paths answer 404 and known paths with the wrong method
405 (with ``Allow``), both in the error shape of the path's routes (Stratus's by default; a
compatible API's under its prefix, docs/adr/0042-compatible-api-facades.md)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from functions.catalog import FACADES, http_functions
from shared.catalog import Http
from shared.handler import powertools_handler
from shared.http.context import request_id_of
from shared.http.dialect import dialect_for
from shared.http.routing import RouteTable, facade_dialect, http_routes


@cache
def _routes() -> RouteTable[Http]:
    return http_routes(http_functions())


def _answer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    http = (event.get("requestContext") or {}).get("http") or {}
    path = str(event.get("rawPath") or http.get("path", ""))
    error, dialect = _routes().unmatched(str(http.get("method", "")), path, facade_dialect(path, FACADES))
    return dialect_for(dialect).error_result(error, request_id_of(event))


handler = powertools_handler(_answer, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
