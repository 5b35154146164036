"""Coze's chat (``/v3/chat``) as chat turns. A chat is one turn of the agent named by ``bot_id``,
run by the chat service as ``POST /api/v1/chat`` runs it (strategy, knowledge, memory, events,
cancellation, reaper): the last of ``additional_messages`` is the question; the (user, assistant)
messages before it are history the model remembers besides the conversation's stored turns;
``custom_variables`` (and ``parameters``) fill the agent's system-prompt variables; ``user_id``
is the end user of a conversation the chat starts. The chat's id is the stored answer's id, so
``/v3/chat/retrieve`` and ``/v3/chat/message/list`` read the answer itself.

Coze conversations are found by id alone (Coze's retrieval calls name no user): a conversation of
the tenant (of the key's agent, for a bound key) whatever its end user, which then stays the
end user of every turn in it (docs/adr/0043-coze-facade.md)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from shared.chat.api import MAX_MESSAGE_CHARS, MAX_TOOL_OUTPUT_CHARS, ChatBody
from shared.conversations.contract import EndUser
from shared.conversations.errors import ConversationNotFound
from shared.errors import NotFound, StratusError, ValidationFailed
from shared.facades.coze import wire
from shared.facades.coze.dialect import error_data, sse
from shared.validation import RequestModel

if TYPE_CHECKING:
    from shared.auth.principal import Principal
    from shared.cache.ports import StreamEvent
    from shared.chat.service import ChatService, Turn
    from shared.conversations.contract import MessageOut
    from shared.conversations.service import ConversationService

MAX_ADDITIONAL_MESSAGES = 100
# Stored turns given along with the client's history when the two are combined.
STORED_TURNS = 100
DONE = b'event:done\ndata:"[DONE]"\n\n'
ChatStatus = Literal["created", "in_progress", "completed", "failed", "requires_action", "canceled"]
_STATUS: dict[str, ChatStatus] = {"running": "in_progress", "completed": "completed", "failed": "failed",
                                  "cancelled": "canceled", "requires_action": "requires_action"}


class _Request(RequestModel):
    # Message text is the client's, kept as sent.
    model_config = ConfigDict(str_strip_whitespace=False)


class CozeEnterMessage(_Request):
    """One of ``additional_messages``, as ``cozepy.Message.model_dump()`` sends it (the read-only
    fields included, ignored)."""

    role: Literal["user", "assistant"]
    type: Literal["", "question", "answer"] | None = None
    content: str = Field(max_length=MAX_MESSAGE_CHARS * 4)
    content_type: Literal["text", "object_string", "card"] = "text"
    meta_data: dict[str, str] | None = None
    id: str | None = None
    conversation_id: str | None = None
    section_id: str | None = None
    bot_id: str | None = None
    chat_id: str | None = None
    created_at: int | None = Field(default=None, ge=0, le=10**12)
    updated_at: int | None = Field(default=None, ge=0, le=10**12)
    reasoning_content: str | None = None


class CozeChatRequest(_Request):
    """``POST /coze/v3/chat``: ``bot_id`` an agent's id (or a built-in's slug)."""

    bot_id: str = Field(min_length=1, max_length=100, description="An agent's id, or a built-in agent's slug")
    user_id: EndUser = Field(description="The end user of a conversation this chat starts")
    additional_messages: list[CozeEnterMessage] = Field(default_factory=list, max_length=MAX_ADDITIONAL_MESSAGES,
                                                    description="History, then the question (the last, the "
                                                                "user's)")
    stream: bool = False
    custom_variables: dict[str, str] | None = Field(default=None, description="The agent's system-prompt "
                                                                             "variables")
    auto_save_history: bool = Field(default=True, description="false: the chat is kept out of the conversation "
                                                              "(streamed chats only)")
    meta_data: dict[str, str] | None = Field(default=None, max_length=16, description="Repeated on the chat")
    parameters: dict[str, Any] | None = Field(default=None, description="Filled into the agent's variables too")
    enable_card: bool | None = Field(default=None, description="Accepted; answers are text")


class CozeChatQuery(_Request):
    conversation_id: str | None = Field(default=None, max_length=100,
                                        description="The conversation to chat in (none: a new one)")


class CozeChatRef(_Request):
    """The chat a retrieve, message list or cancel names."""

    conversation_id: str = Field(min_length=1, max_length=100)
    chat_id: str = Field(min_length=1, max_length=100)


# --- Answers (what cozepy's Chat and Message read) --------------------------------------------------


class CozeChatError(BaseModel):
    code: int = 0
    msg: str = ""


class CozeChatUsage(BaseModel):
    token_count: int = 0
    output_count: int = 0
    input_count: int = 0


class CozeToolOutput(_Request):
    """``cozepy.ToolOutput``: a client tool's output."""

    tool_call_id: str = Field(min_length=1, max_length=200)
    output: str = Field(max_length=MAX_TOOL_OUTPUT_CHARS)


class CozeSubmitToolOutputs(_Request):
    """``POST /coze/v3/chat/submit_tool_outputs``: the outputs of every call the chat waits on."""

    tool_outputs: list[CozeToolOutput] = Field(min_length=1, max_length=50)
    stream: bool = False


class CozeToolCallFunction(BaseModel):
    name: str
    arguments: str = Field(description="The arguments, as JSON text")


class CozeToolCall(BaseModel):
    id: str = Field(description="The call's id: its output's tool_call_id")
    type: Literal["function"] = "function"
    function: CozeToolCallFunction


class CozeToolCalls(BaseModel):
    tool_calls: list[CozeToolCall]


class CozeRequiredAction(BaseModel):
    """``cozepy.ChatRequiredAction``: the client tools' calls a ``requires_action`` chat waits on."""

    type: Literal["submit_tool_outputs"] = "submit_tool_outputs"
    submit_tool_outputs: CozeToolCalls


def required_action(tool_calls: list[dict[str, Any]]) -> CozeRequiredAction:
    return CozeRequiredAction(submit_tool_outputs=CozeToolCalls(tool_calls=[
        CozeToolCall(id=str(call["id"]), function=CozeToolCallFunction(name=str(call["name"]),
                                                                        arguments=str(call["arguments"])))
        for call in tool_calls]))


class CozeChat(BaseModel):
    """``cozepy.Chat``: ``id`` is the stored answer's id."""

    id: str
    conversation_id: str
    bot_id: str
    created_at: int
    completed_at: int | None = None
    failed_at: int | None = None
    meta_data: dict[str, str] = Field(default_factory=dict)
    last_error: CozeChatError = Field(default_factory=CozeChatError)
    status: ChatStatus
    usage: CozeChatUsage = Field(default_factory=CozeChatUsage)
    section_id: str
    # status requires_action: the client tools' calls to answer (submit_tool_outputs).
    required_action: CozeRequiredAction | None = None


class CozeMessage(BaseModel):
    """``cozepy.Message``: an answer (``type: answer``), a question, or a smart-reasoning agent's
    tool call (``function_call``) and its result (``tool_response``)."""

    id: str
    conversation_id: str
    bot_id: str
    chat_id: str
    section_id: str
    role: Literal["user", "assistant"]
    type: Literal["question", "answer", "function_call", "tool_response"]
    content: str
    content_type: Literal["text"] = "text"
    meta_data: dict[str, str] = Field(default_factory=dict)
    created_at: int
    updated_at: int
    reasoning_content: str | None = None


class CozeMessages(RootModel[list[CozeMessage]]):
    """A chat's messages (``data`` of ``/v3/chat/message/list``)."""


class CozeDone(RootModel[Literal["[DONE]"]]):
    """The ``done`` event's data: the JSON string ``"[DONE]"``."""


class InvalidChat(NotFound):
    code, default_message = "coze_chat_not_found", "Chat not found"

    def __init__(self, chat_id: str) -> None:
        super().__init__(details={"chat_id": chat_id})
        self.coze_code = wire.INVALID_CHAT


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details={"fields": [{"field": field, "message": message,
                                                                        "type": "value_error"}]})


def _text(message: CozeEnterMessage, index: int) -> str:
    """A message's text: ``text`` content, or the text parts of ``object_string`` (files and
    images have no place in a turn yet)."""
    if message.content_type == "text":
        return message.content
    field = f"additional_messages.{index}.content"
    if message.content_type == "card":
        raise _invalid(f"additional_messages.{index}.content_type", "cards are answers, not input")
    try:
        parts = json.loads(message.content)
    except ValueError:
        raise _invalid(field, "object_string content must be a JSON list of objects") from None
    if not isinstance(parts, list):
        raise _invalid(field, "object_string content must be a JSON list of objects")
    texts = []
    for number, part in enumerate(parts):
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else None
            raise _invalid(f"{field}.{number}", f"parts of type {kind!r} are not supported: send text parts")
    return "\n".join(texts)


def dialogue(messages: list[CozeEnterMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the trailing user messages, joined) and the (question, answer) turns before it."""
    history: list[tuple[str, str]] = []
    asked: list[str] = []
    answered: list[str] = []
    for index, message in enumerate(messages):
        text = _text(message, index)
        if message.role == "user":
            if answered:
                history.append(("\n\n".join(asked), "\n\n".join(answered)))
                asked, answered = [], []
            asked.append(text)
        elif asked:
            answered.append(text)
    if not asked or answered:
        raise _invalid("additional_messages", "the last message must be the user's question (role user)")
    question = "\n\n".join(asked)
    if not question.strip():
        raise _invalid(f"additional_messages.{len(messages) - 1}.content", "the question is empty")
    if len(question) > MAX_MESSAGE_CHARS:
        raise _invalid(f"additional_messages.{len(messages) - 1}.content",
                       f"the question is over {MAX_MESSAGE_CHARS} characters")
    return question, history


def _usage(usage: dict[str, Any] | None) -> CozeChatUsage:
    usage = usage or {}
    given, produced = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return CozeChatUsage(token_count=int(usage.get("total_tokens") or given + produced), output_count=produced,
                     input_count=given)


@dataclass(frozen=True)
class CozeTurn:
    """A started chat: the turn and what every event repeats."""

    turn: Turn
    bot_id: str
    # The conversation the client named (a chat kept out of it runs in one of its own), else the new one.
    conversation_id: str
    created_at: int
    meta_data: dict[str, str]

    @property
    def chat_id(self) -> str:
        return str(self.turn.answer_id)

    def chat(self, status: ChatStatus, **fields: Any) -> CozeChat:
        return CozeChat(id=self.chat_id, conversation_id=self.conversation_id, bot_id=self.bot_id,
                        created_at=self.created_at, meta_data=self.meta_data, status=status,
                        section_id=self.conversation_id, **fields)

    def message(self, content: str, *, type: str = "answer", message_id: str | None = None) -> CozeMessage:
        now = int(time.time())
        return CozeMessage.model_validate({
            "id": message_id or self.chat_id, "conversation_id": self.conversation_id, "bot_id": self.bot_id,
            "chat_id": self.chat_id, "section_id": self.conversation_id, "role": "assistant", "type": type,
            "content": content, "created_at": self.created_at, "updated_at": now})


class CozeChatStream:
    """One chat's stream (:class:`shared.http.dialect.StreamTranslator`): ``message.start`` is
    ``conversation.chat.created`` and ``.in_progress``; each ``message.delta`` a
    ``conversation.message.delta``; a smart-reasoning step's ``tool.call`` and ``tool.result``
    ``conversation.message.completed`` of type ``function_call`` and ``tool_response``;
    ``message.complete`` the answer's ``conversation.message.completed`` then
    ``conversation.chat.completed`` with usage (status ``canceled`` for a cancelled answer);
``message.requires_action`` ``conversation.chat.requires_action`` (the chat with its
``required_action``: client tools' calls to answer with ``submit_tool_outputs``); an
    ``error`` ``conversation.chat.failed`` with ``last_error`` (Coze's ``error`` event when it
    comes before the chat began); ``done`` ``done``. Other events are skipped."""

    def __init__(self, chat: CozeTurn, *, resumed: bool = False) -> None:
        self._chat = chat
        self._began = False
        # A chat continued with tool outputs was created long ago: it only goes back in progress.
        self._resumed = resumed

    def _dump(self, model: BaseModel) -> dict[str, Any]:
        return model.model_dump(mode="json", exclude_none=True)

    def frames(self, event: StreamEvent) -> list[bytes]:
        chat, kind, data = self._chat, event.type, event.data
        if kind == "message.start":
            self._began = True
            if self._resumed:
                return [sse("conversation.chat.in_progress", self._dump(chat.chat("in_progress")))]
            return [sse("conversation.chat.created", self._dump(chat.chat("created"))),
                    sse("conversation.chat.in_progress", self._dump(chat.chat("in_progress")))]
        if kind == "message.delta":
            return [sse("conversation.message.delta", self._dump(chat.message(str(data.get("text", "")))))]
        if kind == "tool.call":
            content = json.dumps({"name": data.get("name"), "arguments": data.get("arguments")}, ensure_ascii=False)
            return [sse("conversation.message.completed", self._dump(chat.message(
                content, type="function_call", message_id=str(data.get("id") or chat.chat_id))))]
        if kind == "tool.result":
            return [sse("conversation.message.completed", self._dump(chat.message(
                str(data.get("output", "")), type="tool_response", message_id=str(data.get("id") or chat.chat_id))))]
        if kind == "message.requires_action":
            return [sse("conversation.chat.requires_action", self._dump(chat.chat(
                "requires_action", required_action=required_action(list(data.get("tool_calls") or [])),
                usage=_usage(data.get("usage")))))]
        if kind == "message.complete":
            now = int(time.time())
            status: ChatStatus = "canceled" if data.get("status") == "cancelled" else "completed"
            return [sse("conversation.message.completed", self._dump(chat.message(str(data.get("content", ""))))),
                    sse("conversation.chat.completed", self._dump(chat.chat(
                        status, completed_at=now, usage=_usage(data.get("usage")))))]
        if kind == "error":
            error = StratusError(str(data.get("message") or StratusError.default_message),
                                 code=str(data.get("code") or StratusError.code), details=data.get("details") or {})
            last_error = error_data(error)
            if not self._began:
                return [sse("error", last_error)]
            return [sse("conversation.chat.failed", self._dump(chat.chat(
                "failed", failed_at=int(time.time()), last_error=CozeChatError(**last_error))))]
        if kind == "done":
            return [DONE]
        return []

    def heartbeat(self) -> bytes:
        from shared.facades.coze.dialect import HEARTBEAT

        return HEARTBEAT


def answer_chat(message: MessageOut, bot_id: str, meta_data: dict[str, str] | None = None) -> CozeChat:
    """A stored answer as the chat it is."""
    status = _STATUS.get(message.status, "in_progress")
    error = CozeChatError()
    if message.error is not None:
        from shared.facades.coze.dialect import coze_status

        code, _ = coze_status(StratusError(message.error.message, code=message.error.code))
        error = CozeChatError(code=code, msg=message.error.message)
    finished = wire.timestamp(message.finished_at) or None
    conversation = str(message.conversation_id)
    action = None
    if status == "requires_action" and message.required_action is not None:
        action = required_action([call.model_dump() for call in message.required_action.tool_calls])
    return CozeChat(id=str(message.id), conversation_id=conversation, bot_id=bot_id,
                    created_at=wire.timestamp(message.created_at), meta_data=meta_data or {},
                    completed_at=finished if status in ("completed", "canceled") else None,
                    failed_at=finished if status == "failed" else None, last_error=error, status=status,
                    usage=_usage(message.usage), section_id=conversation, required_action=action)


def message_out(message: MessageOut, *, chat_id: uuid.UUID | None = None) -> CozeMessage:
    """A stored message as Coze's: a question, or an answer (its chat is itself)."""
    conversation = str(message.conversation_id)
    chat = chat_id or (message.id if message.role == "assistant" else message.reply_to) or message.id
    return CozeMessage(id=str(message.id), conversation_id=conversation, bot_id=str(message.agent_id),
                       chat_id=str(chat), section_id=conversation, role=message.role,
                       type="answer" if message.role == "assistant" else "question", content=message.content,
                       created_at=wire.timestamp(message.created_at), updated_at=wire.timestamp(message.updated_at))


def step_messages(message: MessageOut) -> list[CozeMessage]:
    """A smart-reasoning answer's tool calls and results, as Coze lists them before the answer."""
    found: list[CozeMessage] = []
    base = message_out(message)
    for step in message.steps:
        for call in step.tool_calls:
            found.append(base.model_copy(update={"id": call.id, "type": "function_call", "content": json.dumps(
                {"name": call.name, "arguments": call.arguments}, ensure_ascii=False)}))
            found.append(base.model_copy(update={"id": call.id, "type": "tool_response", "content": call.output}))
    return found


class CozeChats:
    def __init__(self, chat: Callable[[], ChatService], conversations: Callable[[], ConversationService]) -> None:
        self._chat = chat
        self._conversations = conversations

    def end_user(self, principal: Principal, conversation_id: str) -> tuple[uuid.UUID, str]:
        """The conversation named by a Coze id, and its end user (anything else: Coze's 4002)."""
        not_found = ConversationNotFound(details={"conversation_id": conversation_id})
        found = wire.parse_id(conversation_id, not_found)
        return found, self._conversations().end_user_of(principal, found)

    def start(self, principal: Principal, body: CozeChatRequest, conversation_id: str | None) -> CozeTurn:
        """Admit the chat (every refusal is an error before any byte of the answer)."""
        if not body.stream and not body.auto_save_history:
            raise wire.CozeError(wire.STREAM_REQUIRES_HISTORY, "A chat that does not stream must be saved to its "
                                 "conversation (auto_save_history: true): it is read back by polling")
        question, prior = dialogue(body.additional_messages)
        inputs: dict[str, Any] = {**(body.parameters or {}), **(body.custom_variables or {})}
        user: str = body.user_id
        named: uuid.UUID | None = None
        history: list[tuple[str, str]] | None = prior or None
        draft = False
        if conversation_id:
            named, user = self.end_user(principal, conversation_id)
            if not body.auto_save_history:
                # The conversation of its own is the named one's stand-in: its variables (fixed
                # when it started) and its draft or published agent, unless the chat says otherwise.
                kept = self._conversations().get_conversation(principal, named, user)
                inputs, draft = {**kept.inputs, **inputs}, kept.draft
            if prior or not body.auto_save_history:
                # The client's history comes after the conversation's own (a chat kept out of
                # the conversation runs in one of its own, which has none).
                from shared.conversations.wiring import turn_store

                stored = turn_store().history(principal.tenant, named, 2**31 - 1, STORED_TURNS)
                history = [*stored, *prior]
        request = ChatBody.model_construct(agent_id=body.bot_id, message=question, user=user, inputs=inputs,
                                           stream=body.stream, draft=draft,
                                           conversation_id=named if body.auto_save_history else None)
        turn = self._chat().start(principal, request, history=history, client_tools=True,
                                  kept_out_of=None if body.auto_save_history else named)
        return CozeTurn(turn, body.bot_id, str(named or turn.conversation_id), int(time.time()),
                        body.meta_data or {})

    def run(self, chat: CozeTurn, emit: Callable[[StreamEvent], None] | None = None) -> Any:
        return self._chat().run(chat.turn, emit)

    def _answer(self, principal: Principal, ref: CozeChatRef) -> tuple[MessageOut, str]:
        """The chat's stored answer, and the end user it is read as."""
        from shared.conversations.wiring import turn_store

        conversation, user = self.end_user(principal, ref.conversation_id)
        message_id = wire.parse_id(ref.chat_id, InvalidChat(ref.chat_id))
        try:
            answer = turn_store().visible_answer(principal, message_id, user)
        except NotFound:
            raise InvalidChat(ref.chat_id) from None
        if answer.conversation_id != conversation and _stands_in_for(principal, answer.conversation_id, user) \
                != conversation:
            # A chat kept out of the named conversation is found by the named one's id, which its
            # events carry; any other chat of another conversation is not this conversation's.
            raise InvalidChat(ref.chat_id)
        return answer, user

    def retrieve(self, principal: Principal, ref: CozeChatRef) -> CozeChat:
        answer, _ = self._answer(principal, ref)
        return answer_chat(answer, str(answer.agent_id))

    def messages(self, principal: Principal, ref: CozeChatRef) -> list[CozeMessage]:
        """The chat's messages besides the question: its tool calls and results, then the answer."""
        answer, _ = self._answer(principal, ref)
        return [*step_messages(answer), message_out(answer)]

    def submit_tool_outputs(self, principal: Principal, ref: CozeChatRef, body: CozeSubmitToolOutputs) -> CozeTurn:
        """Continue a chat waiting on client tools (``requires_action``) with their outputs: the
        same answer goes on (every refusal is an error before any byte of it)."""
        from shared.chat.api import ToolOutput, ToolOutputsBody

        answer, user = self._answer(principal, ref)
        # The conversation's end user as stored (a member's own too): not a client's new value.
        outputs = ToolOutputsBody.model_construct(
            tool_outputs=[ToolOutput.model_construct(tool_call_id=o.tool_call_id, output=o.output)
                          for o in body.tool_outputs], user=user, stream=body.stream)
        turn = self._chat().resume(principal, answer.id, outputs)
        return CozeTurn(turn, str(answer.agent_id), ref.conversation_id, wire.timestamp(answer.created_at), {})

    def cancel(self, principal: Principal, ref: CozeChatRef) -> CozeChat:
        """Ask the running answer to stop (it keeps what was generated): the chat, ``canceled``."""
        answer, user = self._answer(principal, ref)
        self._chat().cancel(principal, answer.id, user)
        return answer_chat(answer, str(answer.agent_id)).model_copy(update={"status": "canceled"})


def _stands_in_for(principal: Principal, conversation_id: uuid.UUID, user: str) -> uuid.UUID | None:
    """The conversation a chat's own conversation stands in for (auto_save_history: false)."""
    from shared.conversations.wiring import turn_store

    try:
        return turn_store().find_conversation(principal, conversation_id, user).kept_out_of
    except NotFound:
        return None


def coze_chats() -> CozeChats:
    from shared.chat.wiring import chat_service
    from shared.conversations.wiring import conversation_service

    return CozeChats(chat_service, conversation_service)
