"""Rows to response models (one place, shared by the conversation API and chat)."""

from __future__ import annotations

from typing import Any

from shared.conversations.api import (
    AgentStep,
    ConversationOut,
    Feedback,
    MessageError,
    MessageOut,
    Reference,
    RequiredAction,
)

# A turn failed by the local runtime's restart reconciler carries a reason but no code.
INTERRUPTED = "chat_turn_interrupted"


def conversation_out(row: dict[str, Any]) -> ConversationOut:
    return ConversationOut(id=row["id"], agent_id=row["agent_id"], user=row["end_user"], name=row["name"],
                           draft=row["draft"], inputs=row["inputs"], message_count=row["message_count"],
                           last_message_at=row["last_message_at"], created_at=row["created_at"],
                           updated_at=row["updated_at"], version=row["version"])


def message_out(row: dict[str, Any]) -> MessageOut:
    error = None
    if row["error"] or row["error_code"]:
        error = MessageError(code=row["error_code"] or INTERRUPTED, message=row["error"] or "")
    feedback = None
    if row["feedback_rating"] or row["feedback_content"]:
        feedback = Feedback(rating=row["feedback_rating"], content=row["feedback_content"] or "",
                            at=row["feedback_at"])
    return MessageOut(id=row["id"], conversation_id=row["conversation_id"], position=row["position"],
                      role=row["role"], reply_to=row["reply_to"], content=row["content"], status=row["status"],
                      agent_id=row["agent_id"], agent_version=row["agent_version"],
                      references=[Reference.model_validate(r) for r in row["refs"] or []],
                      rewritten_query=row["rewritten_query"], model=row["model"], stop_reason=row["stop_reason"],
                      usage=row["usage"], latency=row["latency"], context=row["context"], error=error,
                      feedback=feedback, created_at=row["created_at"], updated_at=row["updated_at"],
                      finished_at=row["finished_at"],
                      steps=[AgentStep.model_validate(step) for step in row.get("steps") or []],
                      required_action=_required_action(row))


def _required_action(row: dict[str, Any]) -> RequiredAction | None:
    action, expires = row.get("required_action"), row.get("action_expires_at")
    if not action or expires is None:
        return None
    return RequiredAction(tool_calls=action.get("tool_calls") or [], expires_at=expires,
                          history=action.get("history"))
