"""The Coze facade's wire, without a server: domain errors into Coze's ``{"code", "msg",
"detail": {"logid"}}`` with the right status and the X-Tt-Logid header; the success envelope and
list shapes as ``cozepy``'s parser reads them; the facade's place in the catalog (docs/adr/0043)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from cozepy.exception import CozeAPIError
from cozepy.request import Requester

from functions import catalog
from infra.topology import validate_facades
from shared.agents.errors import AgentNotFound, AgentNotPublished
from shared.conversations.errors import AgentNotAllowed, ConversationBusy, ConversationNotFound, MessageNotFound
from shared.db.paging import Page
from shared.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    StratusError,
    Unauthenticated,
    ValidationFailed,
)
from shared.facades.coze import wire
from shared.facades.coze.dialect import COZE, LOGID_HEADER
from shared.http.dialect import dialect_for
from shared.http.routing import facade_dialect


def _answer(error: StratusError) -> tuple[int, dict[str, Any], dict[str, str]]:
    answer = COZE.error(error, "log-1")
    return answer.status, json.loads(answer.body), answer.headers


@pytest.mark.parametrize(("error", "status", "code"), [
    (Unauthenticated(), 401, 4100),
    (Forbidden(), 403, 4101),
    (ValidationFailed.of([{"loc": ("bot_id",), "msg": "Field required", "type": "missing"}], prefix="body"), 400,
     4000),
    (BadRequest("Request body is not valid JSON", code="biz_malformed_json"), 400, 4000),
    (ConversationNotFound(), 404, 4002),
    (MessageNotFound(), 404, 4005),
    (AgentNotFound(), 404, 4006),
    (AgentNotAllowed(), 404, 4006),
    (NotFound("No route for /coze/v9", code="biz_route_not_found"), 404, 4200),
    (NotFound(), 404, 4200),
    (AgentNotPublished(), 409, 4015),
    (ConversationBusy(), 409, 4016),
    (Conflict("The answer has already ended", code="chat_turn_finished"), 409, 4104),
    (Conflict(), 409, 4000),
    (RateLimited("Too many requests", code="sys_rate_limited", headers={"Retry-After": "3"}), 429, 4009),
    (RateLimited("Over quota", code="quota_exceeded"), 429, 4011),
    (StratusError("The model provider failed", code="model_provider_error"), 500, 4013),
    (StratusError(), 500, 5000),
    (wire.CozeError(wire.STREAM_REQUIRES_HISTORY, "stream false needs auto_save_history"), 400, 4007),
])
def test_domain_errors_answer_coze_s_code_and_status(error: StratusError, status: int, code: int) -> None:
    got_status, body, headers = _answer(error)
    assert (got_status, body["code"]) == (status, code)
    assert body["msg"] and body["detail"]["logid"] == "log-1" and body["detail"]["stratus_code"] == error.code
    assert headers[LOGID_HEADER] == "log-1"
    assert all(headers[name] == value for name, value in error.headers.items())


def test_a_validation_error_names_its_fields_in_msg() -> None:
    error = ValidationFailed.of([{"loc": ("additional_messages", 0, "role"), "msg": "Input should be 'user'",
                                  "type": "literal_error"}], prefix="body")
    _, body, _ = _answer(error)
    assert "additional_messages.0.role: Input should be 'user'" in body["msg"]


def _cozepy_reads(status: int, body: Any, cast: Any) -> Any:
    response = httpx.Response(status, json=body, headers={"x-tt-logid": "log-1"},
                              request=httpx.Request("GET", "http://stratus/coze/v1/x"))
    return Requester()._parse_response("GET", "http://stratus/coze/v1/x", response, cast)


def test_cozepy_raises_the_error_with_its_code_msg_and_logid() -> None:
    status, body, _ = _answer(ConversationNotFound())
    with pytest.raises(CozeAPIError) as raised:
        _cozepy_reads(status, body, None)
    assert (raised.value.code, raised.value.msg, raised.value.logid) == (4002, "Conversation not found", "log-1")


def test_the_envelope_and_the_number_page_read_as_cozepy_reads_them() -> None:
    from cozepy.users import User

    user = {"user_id": "u", "user_name": "ana@acme.test", "nick_name": "Ana", "avatar_url": ""}
    assert _cozepy_reads(200, COZE.success(user, "log-1"), User).nick_name == "Ana"
    page = Page(items=[{"id": "a"}, {"id": "b"}], page=1, limit=2, total=3)
    body = COZE.page(page, "log-1")
    assert body["code"] == 0 and body["data"] == {"items": [{"id": "a"}, {"id": "b"}], "has_more": True, "total": 3}
    assert wire.number_page(Page(items=[], page=2, limit=2, total=3), "conversations", total=False) == {
        "conversations": [], "has_more": False}


def test_ids_and_times() -> None:
    known = uuid.uuid4()
    assert wire.parse_id(str(known), ConversationNotFound()) == known
    with pytest.raises(ConversationNotFound):
        wire.parse_id("7351234567890", ConversationNotFound())
    assert wire.coze_id(None) == "" and wire.timestamp(None) == 0


def test_the_coze_facade_owns_its_prefix() -> None:
    validate_facades()
    (facade,) = [f for f in catalog.FACADES if f.name == "coze"]
    assert (facade.prefix, facade.base_path) == ("/coze", "/coze")
    assert dialect_for("coze") is COZE
    assert facade_dialect("/coze/v1/unknown", catalog.FACADES) == "coze"
    coze_routes = [fn for fn in catalog.http_functions() if fn.trigger.path.startswith("/coze/")]  # type: ignore[union-attr]
    assert coze_routes and all(fn.trigger.dialect == "coze" for fn in coze_routes)  # type: ignore[union-attr]


def test_openapi_documents_coze_s_error_body() -> None:
    name, schema = COZE.error_schema()
    assert name == "CozeError" and schema["required"] == ["code", "msg", "detail"]
    assert COZE.success_schema({"type": "string"})["properties"]["data"] == {"type": "string"}
