"""The conversations domain's :class:`~shared.conversations.contract.TurnStore`, over its
repository: each call one transaction, with the visibility rules of ``access``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.auth.principal import Principal
from shared.conversations import repository as repo
from shared.conversations.access import check_agent_allowed, end_user_of, visible_conversation
from shared.conversations.api import MessageOut
from shared.conversations.contract import AnswerOutcome, OpenedTurn, StuckAnswer, TurnConversation
from shared.conversations.errors import ConversationBusy, MessageNotFound
from shared.conversations.views import message_out
from shared.db.database import Database
from shared.errors import StratusError
from shared.ids import new_id
from shared.observability import tracer


class ConversationTurns:
    def __init__(self, db: Database) -> None:
        self._db = db

    def find_conversation(self, principal: Principal, conversation_id: uuid.UUID,
                          user: str | None) -> TurnConversation:
        with self._db.transaction(principal.tenant) as conn:
            row = visible_conversation(conn, principal, conversation_id, user)
        return TurnConversation(id=row["id"], agent_id=row["agent_id"], draft=row["draft"], inputs=row["inputs"],
                                kept_out_of=row.get("kept_out_of"))

    @tracer.capture_method(capture_response=False)
    def open_turn(self, principal: Principal, *, conversation_id: uuid.UUID | None, user: str | None,
                  agent_id: uuid.UUID, draft: bool, inputs: dict[str, Any], question: str,
                  agent_version: int | None, kept_out_of: uuid.UUID | None = None) -> OpenedTurn:
        tenant_id = principal.tenant
        question_id, answer_id = new_id(), new_id()
        with self._db.transaction(tenant_id) as conn:
            if conversation_id is None:
                conversation = repo.insert_conversation(
                    conn, conversation_id=new_id(), tenant_id=tenant_id, agent_id=agent_id,
                    end_user=end_user_of(principal, user), name="", draft=draft, inputs=inputs,
                    created_by=principal.user_id, kept_out_of=kept_out_of)
            else:
                # Locked: one turn at a time per conversation (deleted meanwhile: 404).
                conversation = visible_conversation(conn, principal, conversation_id, user, lock=True)
                if repo.running_answer(conn, tenant_id, conversation["id"]) is not None:
                    raise ConversationBusy(details={"conversation_id": str(conversation["id"])})
            _, answer = repo.insert_turn(conn, conversation, question=question, user_message_id=question_id,
                                         answer_id=answer_id, agent_version=agent_version)
        return OpenedTurn(conversation_id=conversation["id"], question_id=question_id, answer_id=answer_id,
                          answer_position=answer["position"], created_conversation=conversation_id is None)

    def history(self, tenant_id: uuid.UUID, conversation_id: uuid.UUID, before_position: int,
                turns: int) -> list[tuple[str, str]]:
        with self._db.transaction(tenant_id) as conn:
            return repo.history(conn, tenant_id, conversation_id, before_position, turns)

    def checkpoint(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, content: str) -> bool:
        with self._db.transaction(tenant_id) as conn:
            return repo.checkpoint(conn, tenant_id, answer_id, content)

    @tracer.capture_method(capture_response=False)
    def finish_answer(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, outcome: AnswerOutcome) -> MessageOut:
        with self._db.transaction(tenant_id) as conn:
            row = repo.finish_message(conn, tenant_id, answer_id, _columns(outcome))
            if row is None:  # a reaper ended it first (the conversation may be deleted since)
                row = repo.get_message(conn, tenant_id, answer_id, include_deleted=True)
        if row is None:
            raise MessageNotFound(details={"message_id": str(answer_id)})
        return message_out(row)

    @tracer.capture_method(capture_response=False)
    def pause_answer(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, outcome: AnswerOutcome,
                     expires_s: int) -> MessageOut:
        assert outcome.required_action is not None
        values = {k: v for k, v in _columns(outcome).items() if k != "status"}
        with self._db.transaction(tenant_id) as conn:
            row = repo.pause_message(conn, tenant_id, answer_id, values, outcome.required_action, expires_s)
            if row is None:
                row = repo.get_message(conn, tenant_id, answer_id, include_deleted=True)
        if row is None:
            raise MessageNotFound(details={"message_id": str(answer_id)})
        return message_out(row)

    def claim_paused(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, expires_at: datetime) -> bool:
        with self._db.transaction(tenant_id) as conn:
            return repo.claim_paused(conn, tenant_id, answer_id, expires_at) is not None

    def fail_paused(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, code: str, message: str) -> bool:
        with self._db.transaction(tenant_id) as conn:
            return repo.end_paused(conn, tenant_id, answer_id, "failed", code, message)

    def cancel_paused(self, tenant_id: uuid.UUID, answer_id: uuid.UUID) -> bool:
        with self._db.transaction(tenant_id) as conn:
            return repo.end_paused(conn, tenant_id, answer_id, "cancelled", None, None)

    def question_of(self, tenant_id: uuid.UUID, answer_id: uuid.UUID) -> str:
        with self._db.transaction(tenant_id) as conn:
            question = repo.question_of(conn, tenant_id, answer_id)
        if question is None:
            raise MessageNotFound(details={"message_id": str(answer_id)})
        return question

    def visible_answer(self, principal: Principal, message_id: uuid.UUID, user: str | None) -> MessageOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_message(conn, tenant_id, message_id)
        if row is None or row["role"] != "assistant" or row["end_user"] != end_user_of(principal, user):
            raise MessageNotFound(details={"message_id": str(message_id)})
        try:
            check_agent_allowed(principal, row["agent_id"])
        except StratusError:
            raise MessageNotFound(details={"message_id": str(message_id)}) from None
        return message_out(row)

    def answer_status(self, tenant_id: uuid.UUID, message_id: uuid.UUID) -> str | None:
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_message(conn, tenant_id, message_id, include_deleted=True)
        return row["status"] if row is not None else None

    def stuck_answers(self, older_than_s: int, limit: int) -> list[StuckAnswer]:
        with self._db.transaction() as conn:
            found = repo.stuck_turns(conn, older_than_s, limit)
        return [StuckAnswer(tenant_id=r["tenant_id"], message_id=r["message_id"], conversation_id=r["conversation_id"],
                            paused=r["status"] == "requires_action") for r in found]

    def fail_stuck(self, answer: StuckAnswer, code: str, message: str) -> bool:
        if answer.paused:
            return self.fail_paused(answer.tenant_id, answer.message_id, code, message)
        with self._db.transaction(answer.tenant_id) as conn:
            row = repo.finish_message(conn, answer.tenant_id, answer.message_id,
                                      {"status": "failed", "error_code": code, "error": message})
        return row is not None


def _columns(outcome: AnswerOutcome) -> dict[str, Any]:
    """The outcome as the answer's columns; None leaves a column as the running answer has it."""
    values: dict[str, Any] = {"status": outcome.status, "content": outcome.content}
    optional = {"stop_reason": outcome.stop_reason, "refs": outcome.references,
                "rewritten_query": outcome.rewritten_query, "context": outcome.context, "model": outcome.model,
                "usage": outcome.usage, "latency": outcome.latency, "error_code": outcome.error_code,
                "error": outcome.error, "steps": outcome.steps}
    values.update({column: value for column, value in optional.items() if value is not None})
    return values
