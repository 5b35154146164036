"""An in-memory :class:`~shared.conversations.contract.TurnStore` for tests that run chat turns
without a database: conversations and messages in dicts, with the store's rules that matter to
a turn (one running answer per conversation, the final write fenced on ``running``)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.auth.principal import Principal
from shared.conversations.contract import (
    TOOL_OUTPUTS_EXPIRED,
    AnswerOutcome,
    MessageOut,
    OpenedTurn,
    StuckAnswer,
    TurnConversation,
    end_user_of,
)
from shared.conversations.errors import ConversationBusy, ConversationNotFound, MessageNotFound


class InMemoryTurnStore:
    def __init__(self) -> None:
        self.conversations: dict[uuid.UUID, dict[str, Any]] = {}
        self.messages: dict[uuid.UUID, dict[str, Any]] = {}
        self.checkpoints: list[str] = []

    # Conversations -------------------------------------------------------------------------------
    def find_conversation(self, principal: Principal, conversation_id: uuid.UUID,
                          user: str | None) -> TurnConversation:
        row = self.conversations.get(conversation_id)
        if row is None or row["end_user"] != end_user_of(principal, user) or row["tenant_id"] != principal.tenant:
            raise ConversationNotFound(details={"conversation_id": str(conversation_id)})
        return TurnConversation(id=row["id"], agent_id=row["agent_id"], draft=row["draft"], inputs=row["inputs"])

    def open_turn(self, principal: Principal, *, conversation_id: uuid.UUID | None, user: str | None,
                  agent_id: uuid.UUID, draft: bool, inputs: dict[str, Any], question: str,
                  agent_version: int | None, kept_out_of: uuid.UUID | None = None) -> OpenedTurn:
        if conversation_id is None:
            conversation = {"id": uuid.uuid4(), "tenant_id": principal.tenant, "agent_id": agent_id,
                            "end_user": end_user_of(principal, user), "draft": draft, "inputs": inputs,
                            "message_count": 0}
            self.conversations[conversation["id"]] = conversation
        else:
            self.find_conversation(principal, conversation_id, user)
            conversation = self.conversations[conversation_id]
            for m in self.messages.values():
                if m["conversation_id"] == conversation_id and m["status"] == "requires_action" \
                        and m["action_expires_at"] <= datetime.now(UTC):
                    m.update(status="failed", error_code=TOOL_OUTPUTS_EXPIRED, error="expired")
            if any(m["conversation_id"] == conversation_id and m["status"] in ("running", "requires_action")
                   for m in self.messages.values()):
                raise ConversationBusy(details={"conversation_id": str(conversation_id)})
        position = conversation["message_count"] + 1
        question_row = self._message(conversation, position, "user", question, "completed", agent_version)
        answer_row = self._message(conversation, position + 1, "assistant", "", "running", agent_version)
        answer_row["reply_to"] = question_row["id"]
        conversation["message_count"] += 2
        return OpenedTurn(conversation_id=conversation["id"], question_id=question_row["id"],
                          answer_id=answer_row["id"], answer_position=position + 1,
                          created_conversation=conversation_id is None)

    def _message(self, conversation: dict[str, Any], position: int, role: str, content: str, status: str,
                 agent_version: int | None) -> dict[str, Any]:
        now = datetime.now(UTC)
        row = {"id": uuid.uuid4(), "tenant_id": conversation["tenant_id"], "conversation_id": conversation["id"],
               "end_user": conversation["end_user"], "position": position, "role": role, "reply_to": None,
               "content": content, "status": status, "agent_id": conversation["agent_id"],
               "agent_version": agent_version, "refs": [], "rewritten_query": None, "model": None,
               "stop_reason": None, "usage": None, "latency": None, "context": None, "error_code": None,
               "error": None, "created_at": now, "updated_at": now, "finished_at": None, "steps": [],
               "required_action": None, "action_expires_at": None}
        self.messages[row["id"]] = row
        return row

    # Turns ---------------------------------------------------------------------------------------
    def history(self, tenant_id: uuid.UUID, conversation_id: uuid.UUID, before_position: int,
                turns: int) -> list[tuple[str, str]]:
        answers = sorted((m for m in self.messages.values()
                          if m["conversation_id"] == conversation_id and m["role"] == "assistant"
                          and m["position"] < before_position and m["status"] in ("completed", "cancelled")
                          and m["content"]), key=lambda m: m["position"])
        pairs = [(self.messages[a["reply_to"]]["content"], a["content"]) for a in answers]
        return pairs[-turns:] if turns > 0 else []

    def checkpoint(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, content: str) -> bool:
        row = self.messages[answer_id]
        if row["status"] != "running":
            return False
        row["content"] = content
        self.checkpoints.append(content)
        return True

    def finish_answer(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, outcome: AnswerOutcome) -> MessageOut:
        row = self.messages.get(answer_id)
        if row is None:
            raise MessageNotFound(details={"message_id": str(answer_id)})
        if row["status"] == "running":
            values = {("refs" if k == "references" else k): v for k, v in asdict(outcome).items() if v is not None}
            row.update(values, finished_at=datetime.now(UTC))
        return self._out(row)

    def pause_answer(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, outcome: AnswerOutcome,
                     expires_s: int) -> MessageOut:
        row = self.messages[answer_id]
        if row["status"] == "running":
            values = {("refs" if k == "references" else k): v for k, v in asdict(outcome).items() if v is not None}
            row.update(values, action_expires_at=datetime.now(UTC) + timedelta(seconds=expires_s))
        return self._out(row)

    def claim_paused(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, expires_at: datetime) -> bool:
        row = self.messages[answer_id]
        if row["status"] != "requires_action" or row["action_expires_at"] <= datetime.now(UTC) \
                or row["action_expires_at"] != expires_at:
            return False
        row["status"] = "running"
        return True

    def fail_paused(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, code: str, message: str) -> bool:
        row = self.messages[answer_id]
        if row["status"] != "requires_action":
            return False
        row.update(status="failed", error_code=code, error=message, finished_at=datetime.now(UTC))
        return True

    def cancel_paused(self, tenant_id: uuid.UUID, answer_id: uuid.UUID) -> bool:
        row = self.messages[answer_id]
        if row["status"] != "requires_action":
            return False
        row.update(status="cancelled", finished_at=datetime.now(UTC))
        return True

    def question_of(self, tenant_id: uuid.UUID, answer_id: uuid.UUID) -> str:
        return str(self.messages[self.messages[answer_id]["reply_to"]]["content"])

    def visible_answer(self, principal: Principal, message_id: uuid.UUID, user: str | None) -> MessageOut:
        row = self.messages.get(message_id)
        if row is None or row["role"] != "assistant" or row["end_user"] != end_user_of(principal, user):
            raise MessageNotFound(details={"message_id": str(message_id)})
        return self._out(row)

    def answer_status(self, tenant_id: uuid.UUID, message_id: uuid.UUID) -> str | None:
        row = self.messages.get(message_id)
        return row["status"] if row is not None else None

    def stuck_answers(self, older_than_s: int, limit: int) -> list[StuckAnswer]:
        # Every running answer counts as stuck here: tests decide when the reaper runs.
        now = datetime.now(UTC)
        return [StuckAnswer(m["tenant_id"], m["id"], m["conversation_id"], paused=m["status"] == "requires_action")
                for m in self.messages.values() if m["status"] == "running"
                or (m["status"] == "requires_action" and m["action_expires_at"] < now)][:limit]

    def fail_stuck(self, answer: StuckAnswer, code: str, message: str) -> bool:
        if answer.paused:
            return self.fail_paused(answer.tenant_id, answer.message_id, code, message)
        row = self.messages[answer.message_id]
        if row["status"] != "running":
            return False
        row.update(status="failed", error_code=code, error=message, finished_at=datetime.now(UTC))
        return True

    @staticmethod
    def _out(row: dict[str, Any]) -> MessageOut:
        from shared.conversations.views import message_out

        return message_out({**row, "feedback_rating": None, "feedback_content": None, "feedback_at": None})
