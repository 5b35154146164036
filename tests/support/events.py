"""Sample events from ``events/``, loaded and adjusted per test."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[2] / "events"


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(_load(name))


def http_event(method: str, path: str, *, body: Any = None, raw_body: str | None = None,
               authorizer: dict[str, Any] | None = None, query: dict[str, str] | None = None,
               path_parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The sample API Gateway HTTP API v2 event, retargeted."""
    event = load_event("apigw_http_v2")
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    if authorizer is None:
        event["requestContext"].pop("authorizer")
    else:
        event["requestContext"]["authorizer"] = {"lambda": authorizer}
    if query:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    if path_parameters:
        event["pathParameters"] = path_parameters
    if raw_body is not None or body is not None:
        event["body"] = raw_body if raw_body is not None else json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    return event
