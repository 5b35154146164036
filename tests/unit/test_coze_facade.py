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


def _chat_turn() -> Any:
    from shared.facades.coze.chat import CozeTurn

    turn = type("T", (), {"answer_id": uuid.UUID("00000000-0000-0000-0000-0000000000a1")})()
    return CozeTurn(turn, "bot-1", "conv-1", 1700000000, {"k": "v"})  # type: ignore[arg-type]


def _events(frames: list[bytes]) -> list[tuple[str, Any]]:
    """The frames as cozepy's stream parser reads them: exactly an event and a data line each."""
    parsed = []
    for frame in frames:
        lines = frame.decode().split("\n")
        assert lines[2:] == ["", ""] and lines[0].startswith("event:") and lines[1].startswith("data:")
        parsed.append((lines[0][len("event:"):], json.loads(lines[1][len("data:"):])))
    return parsed


def test_a_turn_s_events_become_coze_s_chat_events() -> None:
    from cozepy.chat import ChatEventType, _chat_stream_handler

    from shared.cache.ports import StreamEvent
    from shared.facades.coze.chat import CozeChatStream

    stream = CozeChatStream(_chat_turn())
    frames = [*stream.frames(StreamEvent("1-0", "message.start", {"message_id": "x"})),
              *stream.frames(StreamEvent("1-1", "retrieval.references", {"references": []})),
              *stream.frames(StreamEvent("1-2", "tool.call", {"id": "call-1", "name": "clock", "arguments": {}})),
              *stream.frames(StreamEvent("1-3", "tool.result", {"id": "call-1", "name": "clock", "output": "12:00"})),
              *stream.frames(StreamEvent("1-4", "message.delta", {"text": "It is "})),
              *stream.frames(StreamEvent("1-5", "message.complete", {
                  "status": "completed", "content": "It is noon.",
                  "usage": {"input_tokens": 10, "output_tokens": 4, "total_tokens": 14}})),
              *stream.frames(StreamEvent("1-6", "done", {"status": "completed"}))]
    events = _events(frames[:-1])
    assert [name for name, _ in events] == [
        "conversation.chat.created", "conversation.chat.in_progress", "conversation.message.completed",
        "conversation.message.completed", "conversation.message.delta", "conversation.message.completed",
        "conversation.chat.completed"]
    assert frames[-1] == b'event:done\ndata:"[DONE]"\n\n'
    parsed = [_chat_stream_handler({"event": name, "data": json.dumps(data)}, None) for name, data in events]  # type: ignore[arg-type]
    created = parsed[0]
    assert created is not None and created.chat is not None and created.chat.id == str(_chat_turn().turn.answer_id)
    call, result, delta, answer = (e.message for e in parsed[2:6] if e is not None)
    assert call is not None and call.type == "function_call" and json.loads(call.content)["name"] == "clock"
    assert result is not None and result.type == "tool_response" and result.content == "12:00"
    assert delta is not None and delta.content == "It is " and delta.chat_id == answer.chat_id  # type: ignore[union-attr]
    assert answer is not None and answer.type == "answer" and answer.content == "It is noon."
    completed = parsed[-1]
    assert completed is not None and completed.event == ChatEventType.CONVERSATION_CHAT_COMPLETED
    assert completed.chat is not None and completed.chat.usage is not None
    assert (completed.chat.usage.input_count, completed.chat.usage.output_count,
            completed.chat.usage.token_count) == (10, 4, 14)
    assert completed.chat.meta_data == {"k": "v"} and completed.chat.conversation_id == "conv-1"
    assert stream.heartbeat() == b"\n"


def test_a_failed_turn_is_a_failed_chat_and_a_cancelled_one_canceled() -> None:
    from shared.cache.ports import StreamEvent
    from shared.facades.coze.chat import CozeChatStream

    early = CozeChatStream(_chat_turn())
    ((name, data),) = _events(early.frames(StreamEvent("1-0", "error", {"code": "model_not_configured",
                                                                      "message": "No chat model"})))
    assert (name, data) == ("error", {"code": 4012, "msg": "No chat model"})
    stream = CozeChatStream(_chat_turn())
    stream.frames(StreamEvent("1-0", "message.start", {}))
    ((name, data),) = _events(stream.frames(StreamEvent("1-1", "error", {"code": "model_provider_error",
                                                                       "message": "down"})))
    assert name == "conversation.chat.failed" and data["status"] == "failed"
    assert data["last_error"] == {"code": 4013, "msg": "down"} and data["failed_at"] > 0
    cancelled = _events(stream.frames(StreamEvent("1-2", "message.complete", {"status": "cancelled",
                                                                               "content": "It"})))
    assert cancelled[-1][0] == "conversation.chat.completed" and cancelled[-1][1]["status"] == "canceled"


def test_additional_messages_become_the_question_and_its_history() -> None:
    from shared.facades.coze.chat import CozeEnterMessage, dialogue

    def message(role: str, content: str, content_type: str = "text") -> CozeEnterMessage:
        return CozeEnterMessage.model_validate({"role": role, "content": content, "content_type": content_type})

    question, history = dialogue([message("assistant", "Welcome"), message("user", "Hi"),
                                  message("assistant", "Hello"), message("user", "Refunds?"),
                                  message("user", '[{"type": "text", "text": "And shipping?"}]', "object_string")])
    assert (question, history) == ("Refunds?\n\nAnd shipping?", [("Hi", "Hello")])
    for refused in ([message("user", "Hi"), message("assistant", "Hello")], [],
                    [message("user", '[{"type": "image", "file_id": "f"}]', "object_string")],
                    [message("user", "   ")]):
        with pytest.raises(ValidationFailed) as invalid:
            dialogue(refused)
        assert _answer(invalid.value)[1]["code"] == 4000
