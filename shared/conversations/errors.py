"""Conversation and chat errors (mapped to the envelope by ``shared.http.api``)."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, StratusError, ValidationFailed


class ConversationNotFound(NotFound):
    code, default_message = "conversation_not_found", "Conversation not found"


class MessageNotFound(NotFound):
    code, default_message = "message_not_found", "Message not found"


class ConversationVersionConflict(Conflict):
    code, default_message = ("conversation_version_conflict",
                             "The conversation changed since it was read; read it again")


class ConversationBusy(Conflict):
    code, default_message = ("conversation_busy",
                             "The conversation is still answering a message; wait for it or cancel it")


class ConversationAgentMismatch(ValidationFailed):
    code, default_message = "conversation_agent_mismatch", "The conversation belongs to another agent"


class FeedbackNotAllowed(ValidationFailed):
    code, default_message = "message_feedback_invalid", "Only an agent's answers take feedback"


class FeedbackOnFailedAnswer(Conflict):
    code, default_message = ("message_failed",
                             "The answer failed and has nothing to rate; ask again and rate the new answer")


class AgentNotAllowed(Forbidden):
    code, default_message = "auth_agent_not_allowed", "This token is bound to another agent"


class ChatNotAwaitingToolOutputs(Conflict):
    code, default_message = ("chat_not_awaiting_tool_outputs",
                             "The answer is not waiting for tool outputs (it ended, or another submit continued it)")


class ChatToolOutputsExpired(Conflict):
    code, default_message = ("chat_tool_outputs_expired",
                             "The client tools' outputs were not submitted in time: the answer failed; ask again")


class ChatEventsExpired(StratusError):
    code, status, default_message = ("chat_events_expired", 410,
                                     "The turn's events are no longer kept; read the message instead")


class AgentModeUnavailable(ValidationFailed):
    code, default_message = ("agent_mode_unavailable",
                             "This agent's mode cannot chat yet (smart-reasoning arrives with tools)")
