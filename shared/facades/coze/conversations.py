"""Coze's conversations and messages over Stratus's conversation service. A conversation is
found by its id alone (Coze's calls name no user) and then read or changed as its end user
(``ConversationService.end_user_of``); a new one (``/v1/conversation/create``) is the token
owner's own, unless a chat starts it for its ``user_id``. Messages are a conversation's stored
turns: a question and its answer (a chat: the answer's id). Coze's paging by message ids is
translated over the conversation's messages, read in order.

Stratus keeps a conversation as turns written by the chat, so what would write a message outside
a chat (creating, editing or deleting one, seeding a conversation with messages, clearing its
context) is refused with Coze's 4000 and the reason (docs/coze-api.md)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from shared.conversations.errors import ConversationNotFound, MessageNotFound
from shared.facades.coze import wire
from shared.facades.coze.chat import CozeEnterMessage, CozeMessage, message_out
from shared.validation import RequestModel

if TYPE_CHECKING:
    from shared.auth.principal import Principal
    from shared.conversations.api import ConversationOut, MessageOut
    from shared.conversations.service import ConversationService

# Coze's message list reads at most this many messages of a conversation (newest kept).
MAX_LISTED_MESSAGES = 2000
_PAGE = 100
API_CONNECTOR = "1024"


class CozeCreateConversation(RequestModel):
    """``POST /coze/v1/conversation/create``: ``bot_id`` is required (a Stratus conversation is
    with one agent); ``messages`` must be empty."""

    bot_id: str | None = Field(default=None, max_length=100, description="The agent the conversation is with")
    name: str | None = Field(default=None, max_length=255)
    messages: list[CozeEnterMessage] | None = Field(default=None, description="Refused when not empty: messages are "
                                                                         "written by chats")
    meta_data: dict[str, str] | None = Field(default=None, max_length=16, description="Accepted, not kept")
    connector_id: str | None = Field(default=None, max_length=100)


class CozeUpdateConversation(RequestModel):
    name: str = Field(min_length=1, max_length=255)


class CozeListMessages(RequestModel):
    """The body of ``POST /coze/v1/conversation/message/list`` (as cozepy sends it: nulls for
    what is not set)."""

    order: Literal["desc", "asc"] | None = "desc"
    chat_id: str | None = Field(default=None, max_length=100)
    before_id: str | None = Field(default=None, max_length=100)
    after_id: str | None = Field(default=None, max_length=100)
    limit: int | None = Field(default=50, ge=1, le=50)


class CozeCreateMessage(RequestModel):
    role: Literal["user", "assistant"]
    content: str
    content_type: Literal["text", "object_string", "card"] = "text"
    meta_data: dict[str, str] | None = None


class CozeModifyMessage(RequestModel):
    content: str | None = None
    content_type: Literal["text", "object_string", "card"] | None = None
    meta_data: dict[str, str] | None = None


class CozeConversation(BaseModel):
    """``cozepy.conversations.Conversation``: its single section is the conversation itself."""

    id: str
    created_at: int
    updated_at: int
    meta_data: dict[str, str] = Field(default_factory=dict)
    last_section_id: str
    name: str
    creator_id: str = Field(description="The conversation's end user")
    connector_id: str = API_CONNECTOR
    bot_id: str


class CozeConversationPage(BaseModel):
    """``data`` of ``GET /coze/v1/conversations``."""

    conversations: list[CozeConversation]
    has_more: bool


class CozeDeleted(BaseModel):
    """An empty ``data``: the conversation is deleted."""



def not_written_here(what: str) -> wire.CozeError:
    return wire.CozeError(wire.INVALID_PARAM, f"{what} is not supported: Stratus writes a conversation's messages "
                          "as chats (a question and its answer); send the question with POST /coze/v3/chat",
                          code="coze_not_supported")


def conversation(out: ConversationOut) -> CozeConversation:
    return CozeConversation(id=str(out.id), created_at=wire.timestamp(out.created_at),
                            updated_at=wire.timestamp(out.updated_at), last_section_id=str(out.id), name=out.name,
                            creator_id=out.user, bot_id=str(out.agent_id))


def _parse_conversation(value: str) -> uuid.UUID:
    return wire.parse_id(value, ConversationNotFound(details={"conversation_id": value}))


class CozeConversations:
    def __init__(self, conversations: Callable[[], ConversationService]) -> None:
        self._conversations = conversations

    def _owned(self, principal: Principal, conversation_id: str) -> tuple[uuid.UUID, str]:
        found = _parse_conversation(conversation_id)
        return found, self._conversations().end_user_of(principal, found)

    def create(self, principal: Principal, body: CozeCreateConversation) -> CozeConversation:
        from shared.conversations.api import CreateConversation as Create

        if body.messages:
            raise not_written_here("Creating a conversation with messages")
        if not body.bot_id:
            raise wire.CozeError(wire.INVALID_PARAM, "bot_id is required: a conversation is with one agent",
                                 code="biz_validation_failed")
        created = self._conversations().create_conversation(
            principal, Create(agent_id=body.bot_id, name=body.name or ""))
        return conversation(created)

    def retrieve(self, principal: Principal, conversation_id: str) -> CozeConversation:
        found, user = self._owned(principal, conversation_id)
        return conversation(self._conversations().get_conversation(principal, found, user))

    def list_conversations(self, principal: Principal, bot_id: str, user: str | None, page_num: int,
             page_size: int) -> CozeConversationPage:
        from shared.agents.contract import agent_ref
        from shared.agents.wiring import agent_service
        from shared.conversations.repository import CONVERSATION_SORTS
        from shared.db.paging import page_request

        # An unknown bot (another tenant's included) is Coze's 4006, not an empty list.
        agent = agent_service().agent_id(principal.tenant, agent_ref(bot_id))
        page = self._conversations().list_conversations(principal, user, agent,
                                                        page_request(page_num, page_size, "-updated_at",
                                                                     CONVERSATION_SORTS))
        return CozeConversationPage(conversations=[conversation(item) for item in page.items],
                                has_more=page.page * page.limit < page.total)

    def update(self, principal: Principal, conversation_id: str, body: CozeUpdateConversation) -> CozeConversation:
        from shared.conversations.api import UpdateConversation as Update

        found, user = self._owned(principal, conversation_id)
        # The end user is the conversation's own (it may be the token owner's reserved one).
        update = Update.model_construct(name=body.name, user=user, version=None)
        return conversation(self._conversations().update_conversation(principal, found, update))

    def delete(self, principal: Principal, conversation_id: str) -> CozeDeleted:
        found, user = self._owned(principal, conversation_id)
        self._conversations().delete_conversation(principal, found, user)
        return CozeDeleted()

    # Messages ---------------------------------------------------------------------------------
    def _messages(self, principal: Principal, conversation_id: str) -> list[CozeMessage]:
        """The conversation's messages, oldest first (the newest ``MAX_LISTED_MESSAGES``), each
        question with its chat (its answer's id)."""
        from shared.conversations.repository import MESSAGE_SORTS
        from shared.db.paging import page_request

        found, user = self._owned(principal, conversation_id)
        stored: list[MessageOut] = []
        number = 1
        while len(stored) < MAX_LISTED_MESSAGES:
            page = self._conversations().list_messages(principal, found, user,
                                                       page_request(number, _PAGE, "-position", MESSAGE_SORTS))
            stored += page.items
            if number * _PAGE >= page.total:
                break
            number += 1
        stored.reverse()
        chats = {m.reply_to: m.id for m in stored if m.role == "assistant" and m.reply_to is not None}
        return [message_out(m, chat_id=chats.get(m.id) if m.role == "user" else None) for m in stored]

    def list_messages(self, principal: Principal, conversation_id: str, body: CozeListMessages) -> dict[str, Any]:
        """Coze's id paging over the messages in ``order``: ``after_id`` the ones following it,
        ``before_id`` the ones preceding it, else the first ``limit``."""
        ordered = self._messages(principal, conversation_id)
        if body.order != "asc":
            ordered.reverse()
        if body.chat_id:
            ordered = [m for m in ordered if m.chat_id == body.chat_id]
        ids = [m.id for m in ordered]
        limit = body.limit or 50

        def position(value: str) -> int:
            if value not in ids:
                raise MessageNotFound(details={"message_id": value})
            return ids.index(value)

        if body.after_id:
            start = position(body.after_id) + 1
            items, more = ordered[start:start + limit], start + limit < len(ordered)
        elif body.before_id:
            end = position(body.before_id)
            items, more = ordered[max(0, end - limit):end], end - limit > 0
        else:
            items, more = ordered[:limit], len(ordered) > limit
        return {"data": items, "first_id": items[0].id if items else "", "last_id": items[-1].id if items else "",
                "has_more": more}

    def retrieve_message(self, principal: Principal, conversation_id: str, message_id: str) -> CozeMessage:
        for message in self._messages(principal, conversation_id):
            if message.id == message_id:
                return message
        raise MessageNotFound(details={"message_id": message_id})


def coze_conversations() -> CozeConversations:
    from shared.conversations.wiring import conversation_service

    return CozeConversations(conversation_service)


def refuse_in(principal: Principal, conversation_id: str, what: str) -> wire.CozeError:
    """The refusal of a write outside a chat, after the conversation is found (an unknown one
    is 4002 first, as Coze answers)."""
    coze_conversations()._owned(principal, conversation_id)
    return not_written_here(what)
