"""Conversation use cases: start one with an agent the caller may use, list, read, rename
(optimistic locking) and soft delete an end user's conversations, read their messages, and
rate an answer. Turns themselves (the question and its streamed answer) are ``shared.chat``'s.

Visibility is checked on every call, in the transaction that reads or writes: the tenant, the
end user (``access.end_user_of``), then the agent a bound token may use. Each miss answers 404
like a missing conversation, and nothing changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from shared.agents.contract import AgentRef, AgentResolver, render_system_prompt
from shared.auth.principal import Principal
from shared.conversations import repository as repo
from shared.conversations.access import (
    bound_agent,
    chat_agent_for,
    check_agent_allowed,
    end_user_of,
    visible_conversation,
)
from shared.conversations.api import (
    ConversationOut,
    CreateConversation,
    MessageFeedback,
    MessageOut,
    UpdateConversation,
)
from shared.conversations.errors import (
    ConversationNotFound,
    ConversationVersionConflict,
    FeedbackNotAllowed,
    FeedbackOnFailedAnswer,
    MessageNotFound,
)
from shared.conversations.views import conversation_out, message_out
from shared.db.database import Database
from shared.db.paging import Page, PageRequest
from shared.ids import new_id
from shared.observability import tracer


class ConversationService:
    def __init__(self, db: Database, agents: Callable[[], AgentResolver]) -> None:
        self._db = db
        self._agents = agents

    # Conversations -------------------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def create_conversation(self, principal: Principal, body: CreateConversation) -> ConversationOut:
        """A conversation with an agent the tenant sees and the token may use: its latest
        published version (409 ``agent_not_published`` if none), or its draft when asked.
        The inputs must fill the system prompt's required variables (422 ``inputs.<name>``)."""
        tenant_id = principal.tenant
        chat = chat_agent_for(principal, self._agents(), body.agent_id, body.draft)
        render_system_prompt(chat.config, body.inputs)
        with self._db.transaction(tenant_id) as conn:
            row = repo.insert_conversation(conn, conversation_id=new_id(), tenant_id=tenant_id,
                                           agent_id=chat.agent.id, end_user=end_user_of(principal, body.user),
                                           name=body.name, draft=body.draft, inputs=body.inputs,
                                           created_by=principal.user_id)
        return conversation_out(row)

    @tracer.capture_method(capture_response=False)
    def list_conversations(self, principal: Principal, user: str | None, agent: AgentRef | None,
                           page: PageRequest) -> Page[ConversationOut]:
        """The end user's live conversations; a bound token sees only its agent's (another
        agent named in the filter is 403, as when starting a conversation with it)."""
        tenant_id = principal.tenant
        agent_id: uuid.UUID | None = None
        if isinstance(agent, str):  # a built-in's slug
            agent_id = self._agents().agent_id(tenant_id, agent)
        elif agent is not None:
            agent_id = agent
        if agent_id is not None:
            check_agent_allowed(principal, agent_id)
        else:
            agent_id = bound_agent(principal)
        with self._db.transaction(tenant_id) as conn:
            rows, total = repo.list_conversations(conn, tenant_id, end_user_of(principal, user), agent_id, page)
        return Page.of([conversation_out(r) for r in rows], page, total)

    @tracer.capture_method(capture_response=False)
    def get_conversation(self, principal: Principal, conversation_id: uuid.UUID, user: str | None) -> ConversationOut:
        with self._db.transaction(principal.tenant) as conn:
            return conversation_out(visible_conversation(conn, principal, conversation_id, user))

    @tracer.capture_method(capture_response=False)
    def end_user_of(self, principal: Principal, conversation_id: uuid.UUID) -> str:
        """The end user of a live conversation of the tenant (of the token's agent, when bound),
        for an API whose calls name a conversation but no user (Coze's): the caller then acts as
        that end user. Anything else answers like a missing conversation."""
        with self._db.transaction(principal.tenant) as conn:
            row = repo.find_conversation(conn, principal.tenant, conversation_id)
        bound = bound_agent(principal)
        if row is None or (bound is not None and row["agent_id"] != bound):
            raise ConversationNotFound(details={"conversation_id": str(conversation_id)})
        return str(row["end_user"])

    @tracer.capture_method(capture_response=False)
    def update_conversation(self, principal: Principal, conversation_id: uuid.UUID,
                            body: UpdateConversation) -> ConversationOut:
        """Rename; with ``version``, a conversation changed since it was read is 409."""
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            current = visible_conversation(conn, principal, conversation_id, body.user)
            row = repo.update_conversation(conn, tenant_id, current["id"], {"name": body.name}, body.version)
            if row is None:
                latest = repo.get_conversation(conn, tenant_id, current["id"], current["end_user"])
                if latest is None:
                    raise ConversationNotFound(details={"conversation_id": str(conversation_id)})
                raise ConversationVersionConflict(details={"version": latest["version"]})
        return conversation_out(row)

    @tracer.capture_method(capture_response=False)
    def delete_conversation(self, principal: Principal, conversation_id: uuid.UUID, user: str | None) -> None:
        """Soft delete: gone for every reader at once. A turn still answering is left to finish
        (its writes name the message, not the conversation); the purge removes the messages."""
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            current = visible_conversation(conn, principal, conversation_id, user)
            if not repo.soft_delete_conversation(conn, tenant_id, current["id"]):
                raise ConversationNotFound(details={"conversation_id": str(conversation_id)})

    # Messages ------------------------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def list_messages(self, principal: Principal, conversation_id: uuid.UUID, user: str | None,
                      page: PageRequest) -> Page[MessageOut]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            current = visible_conversation(conn, principal, conversation_id, user)
            rows, total = repo.list_messages(conn, tenant_id, current["id"], page)
        return Page.of([message_out(r) for r in rows], page, total)

    @tracer.capture_method(capture_response=False)
    def message_feedback(self, principal: Principal, conversation_id: uuid.UUID, message_id: uuid.UUID,
                         body: MessageFeedback) -> MessageOut:
        """Like or dislike a finished answer, with an optional comment; ``rating: null`` takes
        the rating back. A question, or an answer still running, is 422; a failed answer is 409
        (``message_failed``): there is nothing to rate."""
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            current = visible_conversation(conn, principal, conversation_id, body.user)
            message = repo.get_message(conn, tenant_id, message_id)
            if message is None or message["conversation_id"] != current["id"]:
                raise MessageNotFound(details={"message_id": str(message_id)})
            row = repo.set_feedback(conn, tenant_id, current["id"], message_id, body.rating, body.content)
            if row is None:
                if message["role"] == "assistant" and message["status"] == "failed":
                    raise FeedbackOnFailedAnswer(details={"message_id": str(message_id), "status": "failed"})
                reason = ("Only an agent's answers take feedback" if message["role"] != "assistant"
                          else "The answer is still being written; rate it when it has finished")
                raise FeedbackNotAllowed(reason, details={"message_id": str(message_id), "role": message["role"],
                                                          "status": message["status"]})
        return message_out(row)
