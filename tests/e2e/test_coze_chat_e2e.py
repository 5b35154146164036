"""Coze's OpenAPI over Stratus, driven by the official ``cozepy`` SDK against the local runtime
(``Coze(auth=TokenAuth(token), base_url=<stratus>/coze)``; docs/coze-api.md): the user the token
belongs to; chats streamed (Coze's events) and not (polled with ``create_and_poll``), cancelled,
with history, custom variables and end users; conversations and their messages; errors as
``CozeAPIError`` with Coze's codes and the logid; a client that leaves mid-stream still gets its
answer stored. The upstream model is the local server speaking OpenAI's wire protocol."""

from __future__ import annotations

import time
from typing import Any

import cozepy
import pytest
from cozepy import ChatEventType, ChatStatus, Coze, CozeAPIError, Message, MessageType, TokenAuth

from tests.e2e.conftest import RunningRuntime
from tests.support.e2e_tenant import ScriptedTenant
from tests.support.fake_openai import ChatScript, FakeOpenAI

SYSTEM = "You answer questions about Stratus billing."


class Tenant(ScriptedTenant):
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        super().__init__(runtime, fake, name, owner={"owner_email": f"owner@{name}.test", "owner_name": "Ana"},
                         default_model="scripted")

    def agent(self, name: str, *, publish: bool = True, config: dict[str, Any] | None = None) -> str:
        agent = self.post("/api/v1/agents", {"name": name, "config": config or {
            "model": {"name": "scripted"}, "system_prompt": SYSTEM}})
        if publish:
            self.post(f"/api/v1/agents/{agent['id']}/publish", {})
        return str(agent["id"])

    def coze(self, token: str | None = None) -> Coze:
        return Coze(auth=TokenAuth(token or self.token), base_url=f"{self.runtime.url}/coze")


@pytest.fixture(scope="module")
def setup(runtime: RunningRuntime, fake: FakeOpenAI) -> dict[str, Any]:
    tenant = Tenant(runtime, fake, "e2e-coze")
    agent = tenant.agent("Billing helper")
    variables = tenant.agent("Product helper", config={
        "model": {"name": "scripted"}, "system_prompt": "You support {{product}} users.",
        "variables": [{"name": "product", "required": True}]})
    stranger = Tenant(runtime, fake, "e2e-coze-stranger")
    return {"tenant": tenant, "agent": agent, "variables": variables, "stranger": stranger,
            "strangers_agent": stranger.agent("Not yours")}


def _question(text: str) -> list[Message]:
    return [Message.build_user_question_text(text)]


def test_a_streamed_chat_is_coze_s_events(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Invoices ", "go out ", "monthly."], usage=(120, 9)))
    events = list(tenant.coze().chat.stream(bot_id=setup["agent"], user_id="alice",
                                            additional_messages=_question("When are invoices sent?")))
    kinds = [event.event for event in events]
    assert kinds[:2] == [ChatEventType.CONVERSATION_CHAT_CREATED, ChatEventType.CONVERSATION_CHAT_IN_PROGRESS]
    assert kinds[-2:] == [ChatEventType.CONVERSATION_MESSAGE_COMPLETED, ChatEventType.CONVERSATION_CHAT_COMPLETED]
    deltas = [e.message for e in events if e.event == ChatEventType.CONVERSATION_MESSAGE_DELTA]
    assert "".join(m.content for m in deltas if m) == "Invoices go out monthly."
    created, completed = events[0].chat, events[-1].chat
    assert created is not None and completed is not None
    assert created.id == completed.id and created.bot_id == setup["agent"] and created.conversation_id
    assert completed.status == ChatStatus.COMPLETED and completed.usage is not None
    assert (completed.usage.input_count, completed.usage.output_count, completed.usage.token_count) == (120, 9, 129)
    answer = events[-2].message
    assert answer is not None and answer.type == MessageType.ANSWER and answer.content == "Invoices go out monthly."
    assert answer.chat_id == created.id and answer.conversation_id == created.conversation_id
    # The chat is a stored turn of alice's: its id the answer's, its conversation hers.
    stored = tenant.http.get(f"/api/v1/conversations/{created.conversation_id}/messages", params={"user": "alice"},
                             headers=tenant.headers).json()["data"]
    assert stored[0]["id"] == created.id and stored[0]["content"] == "Invoices go out monthly."
    assert stored[1]["content"] == "When are invoices sent?"


def test_a_chat_not_streamed_is_polled_to_its_answer(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Twice ", "a ", "year."], usage=(50, 3), chunk_delay_s=1.0))
    coze = tenant.coze()
    started = time.monotonic()
    chat = coze.chat.create(bot_id=setup["agent"], user_id="bob", additional_messages=_question("How often?"))
    # Answered at once, in progress, while the answer takes seconds to be written.
    assert chat.status == ChatStatus.IN_PROGRESS and time.monotonic() - started < 1.5
    assert coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id).status == ChatStatus.IN_PROGRESS
    while (chat := coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)).status == \
            ChatStatus.IN_PROGRESS:
        time.sleep(0.2)
    assert chat.status == ChatStatus.COMPLETED and chat.usage is not None and chat.usage.output_count == 3
    messages = coze.chat.messages.list(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert [(m.type, m.content) for m in messages] == [(MessageType.ANSWER, "Twice a year.")]
    assert time.monotonic() - started >= 2.0


def test_create_and_poll_continues_a_conversation(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Monthly."]), ChatScript(text=["On the 1st."]))
    coze = tenant.coze()
    first = coze.chat.create_and_poll(bot_id=setup["agent"], user_id="carol",
                                      additional_messages=_question("When am I billed?"))
    assert first.chat.status == ChatStatus.COMPLETED and first.messages is not None
    assert [m.content for m in first.messages] == ["Monthly."]
    second = coze.chat.create_and_poll(bot_id=setup["agent"], user_id="carol",
                                       conversation_id=first.chat.conversation_id,
                                       additional_messages=_question("Which day?"))
    assert second.chat.conversation_id == first.chat.conversation_id
    assert second.messages is not None and [m.content for m in second.messages] == ["On the 1st."]
    # The model remembered the conversation's first turn.
    sent = fake.chat_requests()[-1]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "When am I billed?"), ("assistant", "Monthly."), ("user", "Which day?")]


def test_history_and_custom_variables_reach_the_agent(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Yes."]))
    events = list(tenant.coze().chat.stream(
        bot_id=setup["variables"], user_id="dan", custom_variables={"product": "Stratus"},
        additional_messages=[Message.build_user_question_text("Hi"), Message.build_assistant_answer("Hello!"),
                             Message.build_user_question_text("Can I export?")]))
    assert events[-1].event == ChatEventType.CONVERSATION_CHAT_COMPLETED
    sent = fake.chat_requests()[-1]["messages"]
    assert sent[0]["role"] == "system" and sent[0]["content"] == "You support Stratus users."
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "Hi"), ("assistant", "Hello!"), ("user", "Can I export?")]


def test_a_chat_kept_out_of_its_conversation_leaves_it_unchanged(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["First."]), ChatScript(text=["Aside."]))
    coze = tenant.coze()
    first = coze.chat.create_and_poll(bot_id=setup["agent"], user_id="erin", additional_messages=_question("One"))
    conversation = first.chat.conversation_id
    events = list(coze.chat.stream(bot_id=setup["agent"], user_id="erin", conversation_id=conversation,
                                   auto_save_history=False, additional_messages=_question("Two")))
    assert events[-1].chat is not None and events[-1].chat.conversation_id == conversation
    # The model had the conversation's turn; the conversation kept only its own.
    sent = fake.chat_requests()[-1]["messages"]
    assert [m["content"] for m in sent[1:]] == ["One", "First.", "Two"]
    listed = list(coze.conversations.messages.list(conversation_id=conversation))
    assert [m.content for m in listed] == ["First.", "One"]
    # The chat is still found by the ids its events gave (the named conversation's): retrieved,
    # its messages listed, and a cancel answered as for any ended chat.
    aside = events[-1].chat
    assert coze.chat.retrieve(conversation_id=conversation, chat_id=aside.id).status == ChatStatus.COMPLETED
    assert [m.content for m in coze.chat.messages.list(conversation_id=conversation, chat_id=aside.id)] == ["Aside."]
    with pytest.raises(CozeAPIError) as ended:
        coze.chat.cancel(conversation_id=conversation, chat_id=aside.id)
    assert ended.value.code == 4104
    # Another conversation's chat is not the named conversation's.
    fake.enqueue(ChatScript(text=["Elsewhere."]))
    other = coze.chat.create_and_poll(bot_id=setup["agent"], user_id="erin", additional_messages=_question("Far"))
    with pytest.raises(CozeAPIError) as not_its:
        coze.chat.retrieve(conversation_id=conversation, chat_id=other.chat.id)
    assert not_its.value.code == 4001
    with pytest.raises(CozeAPIError) as refused:
        coze.chat.create(bot_id=setup["agent"], user_id="erin", auto_save_history=False,
                         additional_messages=_question("Three"))
    assert refused.value.code == 4007


def test_a_running_chat_is_cancelled(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=[f"w{n} " for n in range(60)], chunk_delay_s=0.05))
    coze = tenant.coze()
    chat = coze.chat.create(bot_id=setup["agent"], user_id="fay", additional_messages=_question("Long story"))
    cancelled = coze.chat.cancel(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert cancelled.id == chat.id and cancelled.status == ChatStatus.CANCELED
    deadline = time.monotonic() + 30
    while (chat := coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)).status == \
            ChatStatus.IN_PROGRESS:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert chat.status == ChatStatus.CANCELED
    # An ended chat cannot be cancelled: Coze's 4104.
    with pytest.raises(CozeAPIError) as refused:
        coze.chat.cancel(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert refused.value.code == 4104


def test_a_dropped_stream_still_stores_the_answer(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    words = [f"word{n} " for n in range(40)]
    fake.enqueue(ChatScript(text=words, chunk_delay_s=0.03))
    coze = tenant.coze()
    stream = coze.chat.stream(bot_id=setup["agent"], user_id="leaver", additional_messages=_question("Everything"))
    seen = []
    for event in stream:
        seen.append(event)
        if len(seen) == 4:
            break
    stream.response._raw_response.close()
    chat = seen[0].chat
    assert chat is not None
    deadline = time.monotonic() + 60
    while (polled := coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)).status == \
            ChatStatus.IN_PROGRESS:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert polled.status == ChatStatus.COMPLETED
    (answer,) = coze.chat.messages.list(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert answer.content == "".join(words)


def test_chat_errors_are_coze_s(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    cases = [
        (lambda: coze.chat.create(bot_id="7351234567890", user_id="u", additional_messages=_question("Hi")), 4006),
        (lambda: coze.chat.create(bot_id=setup["strangers_agent"], user_id="u", additional_messages=_question("Hi")),
         4006),
        (lambda: coze.chat.create(bot_id=setup["agent"], user_id="u", conversation_id="7351234567890",
                                  additional_messages=_question("Hi")), 4002),
        (lambda: coze.chat.create(bot_id=setup["agent"], user_id="u", additional_messages=[]), 4000),
        (lambda: coze.chat.retrieve(conversation_id="nope", chat_id="nope"), 4002),
        (lambda: tenant.coze("pat_" + "1" * 40).chat.stream(bot_id=setup["agent"], user_id="u",
                                                             additional_messages=_question("Hi")), 4100),
    ]
    for call, code in cases:
        with pytest.raises(CozeAPIError) as refused:
            result = call()
            list(result) if not isinstance(result, cozepy.Chat) else None
        assert refused.value.code == code and refused.value.logid
    # Another tenant's conversation and chat are unknown here.
    stranger: Tenant = setup["stranger"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Mine."]))
    theirs = stranger.coze().chat.create_and_poll(bot_id=setup["strangers_agent"], user_id="u",
                                                  additional_messages=_question("Hi"))
    with pytest.raises(CozeAPIError) as refused:
        coze.chat.retrieve(conversation_id=theirs.chat.conversation_id, chat_id=theirs.chat.id)
    assert refused.value.code == 4002
    raw = tenant.http.post("/coze/v3/chat", headers=tenant.headers, json={"bot_id": setup["agent"]})
    assert raw.status_code == 400 and raw.json()["code"] == 4000 and "user_id" in raw.json()["msg"]


def test_users_me_is_the_token_s_member(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    me = tenant.coze().users.me()
    assert isinstance(me, cozepy.User)
    assert (me.user_name, me.nick_name, me.avatar_url) == ("owner@e2e-coze.test", "Ana", "")
    assert me.user_id and me.response.logid
    raw = tenant.http.get("/coze/v1/users/me", headers=tenant.headers)
    assert raw.headers["x-tt-logid"] == raw.json()["detail"]["logid"] == raw.headers["x-request-id"]
    assert (raw.json()["code"], raw.json()["msg"]) == (0, "")


def test_a_bad_token_is_coze_s_4100(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    with pytest.raises(CozeAPIError) as refused:
        tenant.coze("pat_" + "0" * 40).users.me()
    assert refused.value.code == 4100 and refused.value.logid
    raw = tenant.http.get("/coze/v1/users/me", headers={"Authorization": "Bearer pat_nope"})
    assert raw.status_code == 401 and raw.json()["code"] == 4100


def test_an_unknown_coze_path_is_coze_s_not_found(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    raw = tenant.http.get("/coze/v1/audio/voices", headers=tenant.headers)
    assert raw.status_code == 404 and raw.json()["code"] == 4200 and raw.headers["x-tt-logid"]


def test_conversations_and_their_messages(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    created = coze.conversations.create(bot_id=setup["agent"], name="Billing")
    assert created.name == "Billing" and created.last_section_id == created.id and created.created_at > 0
    assert coze.conversations.retrieve(conversation_id=created.id).id == created.id
    renamed = coze.conversations.update(conversation_id=created.id, name="Invoices")
    assert renamed.name == "Invoices"
    listed = coze.conversations.list(bot_id=setup["agent"], page_size=50)
    assert created.id in [c.id for c in listed.items] and listed.has_more is False
    # A chat in it, whoever user_id names: the conversation stays the token owner's.
    fake.reset()
    fake.enqueue(ChatScript(text=["Monthly."]), ChatScript(text=["The 1st."]))
    first = coze.chat.create_and_poll(bot_id=setup["agent"], user_id="someone", conversation_id=created.id,
                                      additional_messages=_question("When?"))
    second = coze.chat.create_and_poll(bot_id=setup["agent"], user_id="someone", conversation_id=created.id,
                                       additional_messages=_question("Which day?"))
    assert first.chat.conversation_id == second.chat.conversation_id == created.id
    # Paged by ids, newest first, one at a time: cozepy follows last_id to the end.
    messages = list(coze.conversations.messages.list(conversation_id=created.id, limit=1))
    assert [(m.type, m.content) for m in messages] == [
        (MessageType.ANSWER, "The 1st."), (MessageType.QUESTION, "Which day?"),
        (MessageType.ANSWER, "Monthly."), (MessageType.QUESTION, "When?")]
    assert messages[0].chat_id == messages[1].chat_id == second.chat.id
    oldest_first = coze.conversations.messages.list(conversation_id=created.id, order="asc", chat_id=first.chat.id)
    assert [m.content for m in oldest_first.items] == ["When?", "Monthly."] and oldest_first.has_more is False
    one = coze.conversations.messages.retrieve(conversation_id=created.id, message_id=messages[0].id or "")
    assert one.content == "The 1st." and one.role == "assistant"
    coze.conversations.delete(conversation_id=created.id)
    with pytest.raises(CozeAPIError) as gone:
        coze.conversations.retrieve(conversation_id=created.id)
    assert gone.value.code == 4002


def test_what_a_conversation_does_not_take_is_refused(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    from cozepy import MessageContentType, MessageRole

    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    conversation = coze.conversations.create(bot_id=setup["agent"])
    refusals = [
        lambda: coze.conversations.create(bot_id=setup["agent"], messages=_question("Seed")),
        lambda: coze.conversations.create(),
        lambda: coze.conversations.messages.create(conversation_id=conversation.id, role=MessageRole.USER,
                                                   content="Hi", content_type=MessageContentType.TEXT),
        lambda: coze.conversations.messages.update(conversation_id=conversation.id, message_id="m", content="x"),
        lambda: coze.conversations.messages.delete(conversation_id=conversation.id, message_id="m"),
        lambda: coze.conversations.clear(conversation_id=conversation.id),
    ]
    for refused_call in refusals:
        with pytest.raises(CozeAPIError) as refused:
            refused_call()
        assert refused.value.code == 4000, refused.value
    with pytest.raises(CozeAPIError) as refused:
        coze.conversations.messages.retrieve(conversation_id=conversation.id, message_id="nope")
    assert refused.value.code == 4005
    # Another tenant's conversation is unknown here, whatever is asked of it.
    stranger: Tenant = setup["stranger"]
    theirs = stranger.coze().conversations.create(bot_id=setup["strangers_agent"])
    for call in (lambda: coze.conversations.retrieve(conversation_id=theirs.id),
                 lambda: coze.conversations.update(conversation_id=theirs.id, name="Mine"),
                 lambda: coze.conversations.delete(conversation_id=theirs.id),
                 lambda: list(coze.conversations.messages.list(conversation_id=theirs.id)),
                 lambda: coze.conversations.clear(conversation_id=theirs.id)):
        with pytest.raises(CozeAPIError) as unknown:
            call()
        assert unknown.value.code == 4002
    with pytest.raises(CozeAPIError) as unknown_bot:
        coze.conversations.list(bot_id=setup["strangers_agent"])
    assert unknown_bot.value.code == 4006
    assert stranger.coze().conversations.retrieve(conversation_id=theirs.id).name == ""


def test_a_key_bound_to_an_agent_chats_with_it_alone(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    key = tenant.post("/api/v1/api-keys", {"name": "billing app", "resource_type": "agent",
                                           "resource_id": setup["agent"]})
    bound = tenant.coze(key["token"])
    fake.reset()
    fake.enqueue(ChatScript(text=["Yes."]))
    poll = bound.chat.create_and_poll(bot_id=setup["agent"], user_id="gus", additional_messages=_question("Hi"))
    assert poll.chat.status == ChatStatus.COMPLETED
    other_agent = tenant.agent("Other helper")
    other = tenant.coze().conversations.create(bot_id=other_agent)
    for call, code in ((lambda: bound.chat.create(bot_id=other_agent, user_id="gus",
                                                  additional_messages=_question("Hi")), 4006),
                       (lambda: bound.conversations.retrieve(conversation_id=other.id), 4002),
                       (lambda: bound.conversations.list(bot_id=other_agent), 4006)):
        with pytest.raises(CozeAPIError) as refused:
            call()
        assert refused.value.code == code
    draft = tenant.agent("Not yet", publish=False)
    with pytest.raises(CozeAPIError) as unpublished:
        tenant.coze().chat.create(bot_id=draft, user_id="gus", additional_messages=_question("Hi"))
    assert unpublished.value.code == 4015


def test_a_smart_reasoning_agent_s_tool_calls_are_coze_messages(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    from tests.support.fake_openai import ToolCallScript

    tenant: Tenant = setup["tenant"]
    tenant.post("/api/v1/models", {"name": "caller", "protocol": "openai", "provider_model": "gpt-caller",
                                   "base_url": fake.base_url, "api_key": "sk-e2e-" + "x" * 24, "test": False,
                                   "capabilities": ["chat", "function_calling"]})
    agent = tenant.agent("Clock", config={"mode": "smart-reasoning", "model": {"name": "caller"},
                                          "tools": ["current_time"]})
    fake.reset()
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("current_time", ["{}"])]),
                 ChatScript(text=["It is ", "now."]))
    events = list(tenant.coze().chat.stream(bot_id=agent, user_id="hal", additional_messages=_question("Time?")))
    completed = [e.message for e in events if e.event == ChatEventType.CONVERSATION_MESSAGE_COMPLETED and e.message]
    assert [m.type for m in completed] == [MessageType.FUNCTION_CALL, MessageType.TOOL_RESPONSE, MessageType.ANSWER]
    assert "current_time" in completed[0].content and completed[1].content and completed[2].content == "It is now."
    chat = events[-1].chat
    assert chat is not None and chat.status == ChatStatus.COMPLETED
    listed = tenant.coze().chat.messages.list(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert [m.type for m in listed] == [MessageType.FUNCTION_CALL, MessageType.TOOL_RESPONSE, MessageType.ANSWER]


def test_another_member_s_own_conversations_are_not_reachable(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    """A conversation of a member's own (``member:<user>``, which Stratus's API never lets a
    client name) is unknown to another member's key, bound or not, as it is on /api/v1."""
    tenant: Tenant = setup["tenant"]
    developer = tenant.post("/api/v1/members", {"email": "dev@e2e-coze.test", "issue_token": True})
    theirs = tenant.coze(developer["token"])
    owners = tenant.post("/api/v1/conversations", {"agent_id": setup["agent"], "name": "Owner's own"})
    assert owners["user"].startswith("member:")
    for call in (lambda: theirs.conversations.retrieve(conversation_id=owners["id"]),
                 lambda: theirs.conversations.update(conversation_id=owners["id"], name="Taken"),
                 lambda: list(theirs.conversations.messages.list(conversation_id=owners["id"])),
                 lambda: theirs.chat.create(bot_id=setup["agent"], user_id="x", conversation_id=owners["id"],
                                            additional_messages=_question("Hi"))):
        with pytest.raises(CozeAPIError) as unknown:
            call()
        assert unknown.value.code == 4002
    # The owner still reaches it.
    assert tenant.coze().conversations.retrieve(conversation_id=owners["id"]).name == "Owner's own"


def test_a_chat_kept_out_of_its_conversation_keeps_its_variables(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    """The conversation's system-prompt variables, fixed when it started, hold for a chat kept
    out of it (it runs in a conversation of its own, with the named one's history)."""
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["First."]), ChatScript(text=["Aside."]))
    coze = tenant.coze()
    first = coze.chat.create_and_poll(bot_id=setup["variables"], user_id="ivy", custom_variables={"product": "Stratus"},
                                      additional_messages=_question("One"))
    assert first.chat.status == ChatStatus.COMPLETED
    events = list(coze.chat.stream(bot_id=setup["variables"], user_id="ivy",
                                   conversation_id=first.chat.conversation_id, auto_save_history=False,
                                   additional_messages=_question("Two")))
    assert events[-1].event == ChatEventType.CONVERSATION_CHAT_COMPLETED
    assert fake.chat_requests()[-1]["messages"][0]["content"] == "You support Stratus users."
