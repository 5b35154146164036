"""Coze answers whose body is not the plain envelope (``cozepy`` reads some lists' paging and one
answer's message outside ``data``), for HTTP API handlers."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from shared.facades.coze.dialect import LOGID_HEADER
from shared.facades.coze.wire import dump
from shared.http.context import current_request_id, response_headers
from shared.http.envelope import JSON

# A Coze id in a query string (``conversation_id``, ``message_id``); a malformed one is unknown.
IdQuery = Annotated[str, Query(min_length=1, max_length=100)]


def envelope_with(fields: dict[str, Any]) -> Response[Any]:
    """``{"code": 0, "msg": "", **fields, "detail": {"logid"}}`` (the handler's declared model
    still validates it)."""
    request_id = current_request_id()
    body = {"code": 0, "msg": "", **{key: dump(value) for key, value in fields.items()},
            "detail": {"logid": request_id}}
    return Response(200, JSON, body, headers={"X-Request-Id": request_id, LOGID_HEADER: request_id,
                                              **response_headers()})
