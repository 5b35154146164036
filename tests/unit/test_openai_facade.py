"""The OpenAI facade's translation, without a server: messages into a turn's question, history
and instructions; domain errors into OpenAI's error body and status; a turn's events into
``chat.completion.chunk`` lines; and the catalog's facade rules (docs/adr/0042)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions import catalog
from infra.topology import validate_facades
from shared.cache.ports import StreamEvent
from shared.catalog import Facade, Function, FunctionUrl, Http, StreamRoute
from shared.errors import RateLimited, StratusError, Unauthenticated, ValidationFailed
from shared.facades.openai.api import ChatCompletionRequest, ChatMessage
from shared.facades.openai.chat import ModelNotFound, dialogue
from shared.facades.openai.dialect import OPENAI
from shared.http.routing import facade_dialect
from shared.http.stream import validate


def _messages(*pairs: tuple[str, Any]) -> list[ChatMessage]:
    return [ChatMessage.model_validate({"role": role, "content": content}) for role, content in pairs]


def test_messages_become_the_question_its_history_and_the_client_s_instructions() -> None:
    said = dialogue(_messages(("assistant", "Welcome!"), ("system", "Be brief."), ("user", "Hi"),
                              ("assistant", "Hello"), ("assistant", "How can I help?"), ("developer", "No jokes."),
                              ("user", "Refunds?"), ("assistant", "Five days."),
                              ("user", [{"type": "text", "text": "And"}, {"type": "text", "text": "shipping?"}]),
                              ("user", "  Thanks  ")))
    # The opening line carries no turn; consecutive messages of a side are joined; text kept as sent.
    assert said.history == [("Hi", "Hello\n\nHow can I help?"), ("Refunds?", "Five days.")]
    assert said.question == "And\nshipping?\n\n  Thanks  "
    assert said.instructions == "Be brief.\n\nNo jokes."


@pytest.mark.parametrize(("messages", "field"), [
    ([("user", "Hi"), ("assistant", "Hello")], "messages"),
    ([("system", "Only instructions")], "messages"),
    ([("user", "   ")], "messages.0.content"),
    ([("user", [{"type": "image_url", "image_url": {"url": "https://x"}}])], "messages.0.content.0.type"),
    ([("user", "Hi"), ("tool", "42")], "messages.1.role"),
])
def test_what_a_turn_cannot_take_is_refused_naming_the_field(messages: list[tuple[str, Any]], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        dialogue(_messages(*messages))
    status, error = _error(refused.value)
    assert status == 400 and error["param"] == field and error["type"] == "invalid_request_error"


def _error(exc: StratusError) -> tuple[int, dict[str, Any]]:
    answer = OPENAI.error(exc, "r-1")
    body = json.loads(answer.body)
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return answer.status, body["error"]


def test_request_validation_answers_openai_s_400() -> None:
    base = {"model": "builtin-quick-answer", "messages": [{"role": "user", "content": "Hi"}]}
    assert validate(ChatCompletionRequest, {**base, "temperature": 0, "max_tokens": 10, "seed": 1}, "body")
    for extra, param, code in (({"bogus": 1}, "bogus", "unknown_parameter"), ({"n": 2}, "n", "invalid_value"),
                               ({"tools": [{"type": "function"}]}, "tools", "invalid_value"),
                               ({"response_format": {"type": "json_object"}}, "response_format", "invalid_value"),
                               ({"messages": []}, "messages", "invalid_value"),
                               ({"user": "member:x"}, "user", "invalid_value")):
        with pytest.raises(ValidationFailed) as refused:
            validate(ChatCompletionRequest, {**base, **extra}, "body")
        status, error = _error(refused.value)
        assert (status, error["param"], error["code"]) == (400, param, code), error
    status, error = _error(ValidationFailed.of([{"loc": ("bogus",), "msg": "x", "type": "extra_forbidden"}],
                                               prefix="body"))
    assert error["message"] == "Unrecognized request argument supplied: bogus"


def test_domain_errors_map_to_openai_s_statuses_and_codes() -> None:
    assert _error(Unauthenticated())[0] == 401 and _error(Unauthenticated())[1]["code"] == "invalid_api_key"
    status, error = _error(ModelNotFound("gpt-4o"))
    assert (status, error["code"], error["param"]) == (404, "model_not_found", "model")
    assert "`gpt-4o`" in error["message"]
    limited = OPENAI.error(RateLimited(headers={"Retry-After": "3"}), "r")
    assert limited.status == 429 and limited.headers["Retry-After"] == "3"
    assert json.loads(limited.body)["error"]["code"] == "rate_limit_exceeded"
    assert _error(ValidationFailed(code="chat_message_too_long"))[1]["code"] == "context_length_exceeded"
    assert _error(StratusError()) == (500, {"message": "Internal error", "type": "server_error", "param": None,
                                            "code": "sys_internal_error"})


def _lines(frames: list[bytes]) -> list[Any]:
    out = []
    for frame in frames:
        text = frame.decode()
        assert text.startswith("data: ") and text.endswith("\n\n") and "\nevent:" not in text
        data = text[len("data: "):-2]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_a_turn_s_events_become_chat_completion_chunks() -> None:
    stream = OPENAI.chat_stream("chatcmpl-1", "agent-7", 1700000000, include_usage=True)
    frames: list[bytes] = []
    for kind, data in (("message.start", {"message_id": "m"}), ("retrieval.references", {"references": []}),
                       ("message.delta", {"text": "Hel"}), ("tool.call", {"name": "x"}),
                       ("message.delta", {"text": "lo"}),
                       ("message.complete", {"stop_reason": "length",
                                             "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}}),
                       ("done", {"status": "completed"})):
        frames += stream.frames(StreamEvent("1-0", kind, data))
    lines = _lines(frames)
    # Events OpenAI has no word for (references, a tool call) are skipped.
    assert len(lines) == 6 and lines[-1] == "[DONE]"
    chunks = lines[:-1]
    assert all(c["id"] == "chatcmpl-1" and c["model"] == "agent-7" and c["object"] == "chat.completion.chunk"
               for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["Hel", "lo"]
    assert chunks[3]["choices"][0]["finish_reason"] == "length"
    assert chunks[4]["choices"] == [] and chunks[4]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2,
                                                                 "total_tokens": 7}
    assert all(c["usage"] is None for c in chunks[:4])
    assert stream.heartbeat().startswith(b":")


def test_a_failure_after_the_stream_began_is_openai_s_error_line() -> None:
    stream = OPENAI.chat_stream("chatcmpl-1", "a", 1, include_usage=False)
    (error,) = _lines(stream.frames(StreamEvent("1-0", "error", {"code": "model_provider_error", "message": "down"})))
    # The event carries no status: a failure while answering is a server error.
    assert error == {"error": {"message": "down", "type": "server_error", "param": None,
                               "code": "model_provider_error"}}
    (chunk,) = _lines(stream.frames(StreamEvent("1-1", "message.complete", {"stop_reason": "cancelled"})))
    assert chunk["choices"][0]["finish_reason"] == "stop" and "usage" not in chunk


def test_the_catalog_s_facades_own_their_prefixes() -> None:
    validate_facades()
    assert ("/openai", "openai") in [(f.prefix, f.dialect) for f in catalog.FACADES]
    assert facade_dialect("/openai/v1/embeddings", catalog.FACADES) == "openai"
    assert facade_dialect("/api/v1/nothing", catalog.FACADES) == "stratus"
    assert facade_dialect("/openaiz", catalog.FACADES) == "stratus"


def _fn(path: str, dialect: str, *, stream: bool = False) -> Function:
    trigger: Any = (FunctionUrl((path,), (StreamRoute("POST", path, "x", dialect=dialect),)) if stream
                    else Http("GET", path, permission="x", dialect=dialect))
    return Function("probe", "functions.probe", "chat", trigger)


@pytest.mark.parametrize(("functions", "facades", "message"), [
    ([_fn("/openai/v1/models", "stratus")], None, "lies under facade openai"),
    ([_fn("/openai/v1/chat/completions", "stratus", stream=True)], None, "lies under facade openai"),
    ([_fn("/api/v1/models", "openai")], None, "outside every facade's prefix"),
    ([], [Facade("x", "/api", "x", "/api/v1")], "must be one segment"),
    ([], [Facade("x", "/x/y", "x", "/x/y")], "must be one segment"),
    ([], [Facade("a", "/a", "d", "/a/v1"), Facade("b", "/b", "d", "/b/v1")], "another facade's"),
    ([], [Facade("a", "/a", "d", "/b/v1")], "lies outside"),
])
def test_facade_rules_are_checked(functions: list[Function], facades: list[Facade] | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_facades(functions, facades)
