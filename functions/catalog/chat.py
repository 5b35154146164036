"""Conversations and chat turns (a streaming function URL and its reaper)."""

from __future__ import annotations

from functions.catalog import coze, dify, openai
from functions.catalog._common import EMBED_ACCESS
from shared.catalog import (
    DATABASE,
    REDIS,
    Function,
    FunctionUrl,
    Http,
    Schedule,
    SseEvent,
    StreamRoute,
    bucket,
    invoke,
    state_machine,
)

_C = "chat"
_CHAT = "/api/v1/chat"
_CONV = "/api/v1/conversations/{conversation_id}"
# The chat function's models (imported by the HTTP layer when it needs them).
_API = "shared.chat.api"
_EVENTS = "shared.chat.event_data"
_RUN = "shared.workflows.run_event_data"
_MESSAGE = "shared.conversations.api:MessageOut"
# What a turn sends, in order: start, references (with knowledge), a smart-reasoning agent's
# steps (thought, tool calls and their results), a chatflow agent's run progress (its start, its
# nodes' starts and ends, its end, among the deltas), deltas, then complete or error, and done last.
# A replay sends the same events from where the client left.
_TURN_EVENTS = (
    SseEvent("message.start", f"{_EVENTS}:MessageStart", "The turn is admitted: its conversation and message ids"),
    SseEvent("retrieval.references", f"{_EVENTS}:RetrievalReferences",
             "The knowledge the prompt kept (agents with knowledge bases)"),
    SseEvent("agent.thought", f"{_EVENTS}:AgentThought",
             "A smart-reasoning step's thought, given with its tool calls"),
    SseEvent("tool.call", f"{_EVENTS}:ToolCallStarted", "A smart-reasoning step calls a tool"),
    SseEvent("tool.result", f"{_EVENTS}:ToolCallFinished", "What a tool call answered (its status, output, time)"),
    SseEvent("workflow.started", f"{_RUN}:WorkflowStartedEvent", "A chatflow agent's run began (its run id)"),
    SseEvent("node.started", f"{_RUN}:NodeStartedEvent", "A node of a chatflow agent's run began"),
    SseEvent("node.finished", f"{_RUN}:NodeFinishedEvent", "A node of a chatflow agent's run settled"),
    SseEvent("workflow.finished", f"{_RUN}:WorkflowFinishedEvent", "A chatflow agent's run ended"),
    SseEvent("message.delta", f"{_EVENTS}:MessageDelta", "A piece of the answer's text"),
    SseEvent("message.complete", _MESSAGE, "The stored answer (completed or cancelled)"),
    SseEvent("message.requires_action", f"{_EVENTS}:MessageRequiresAction",
             "The answer paused on client tools: submit their outputs to continue it (then done)"),
    SseEvent("error", f"{_EVENTS}:TurnError", "The turn failed (the answer is stored failed)"),
    SseEvent("done", f"{_EVENTS}:TurnDone", "The last event: the answer's final status"),
)


def _conversation(name: str, module: str, method: str, path: str, summary: str) -> Function:
    # End users' data: every route takes the end user (``user``) and answers 404 for another's.
    return Function(name, f"functions.conversations.{module}", _C,
                    Http(method, path, permission="agent:run", summary=summary, tag="conversations"),
                    access=(DATABASE, REDIS))


FUNCTIONS: tuple[Function, ...] = (
    _conversation("conversations-create", "create_conversation", "POST", "/api/v1/conversations",
                  "Start a conversation with an agent"),
    _conversation("conversations-list", "list_conversations", "GET", "/api/v1/conversations",
                  "An end user's conversations, most recently active first"),
    _conversation("conversations-get", "get_conversation", "GET", _CONV, "One conversation"),
    _conversation("conversations-update", "update_conversation", "PATCH", _CONV, "Rename a conversation"),
    _conversation("conversations-delete", "delete_conversation", "DELETE", _CONV, "Delete a conversation"),
    _conversation("messages-list", "list_messages", "GET", _CONV + "/messages",
                  "A conversation's messages (newest first, or oldest first with order=asc)"),
    _conversation("messages-feedback", "message_feedback", "POST", _CONV + "/messages/{message_id}/feedback",
                  "Like or dislike an answer, with an optional comment"),
)

FUNCTIONS += (
    Function("chat", "functions.chat.app", _C,
             # The compatible APIs' chat routes are served here too (docs/adr/0042): the same turns.
             FunctionUrl((_CHAT, openai.CHAT_COMPLETIONS, coze.CHAT_PREFIX, dify.CHAT_MESSAGES,
                          dify.COMPLETION_MESSAGES), routes=(
                 StreamRoute("POST", _CHAT, "agent:run",
                             "Send a message to an agent: an SSE stream of the turn's events, or the final "
                             "message with \"stream\": false", tag="chat",
                             body=f"{_API}:ChatBody", response=_MESSAGE, events=_TURN_EVENTS),
                 StreamRoute("POST", _CHAT + "/{message_id}/tool-outputs", "agent:run",
                             "Continue an answer paused on client tools with their outputs: the rest of the "
                             "turn's events, or the final message with \"stream\": false", tag="chat",
                             body=f"{_API}:ToolOutputsBody", response=_MESSAGE, events=_TURN_EVENTS),
                 StreamRoute("GET", _CHAT + "/{message_id}/events", "agent:run",
                             "Replay a turn's events after Last-Event-ID, then follow it live", tag="chat",
                             query=f"{_API}:UserQuery", events=_TURN_EVENTS),
                 StreamRoute("POST", _CHAT + "/{message_id}/cancel", "agent:run",
                             "Stop a running turn; the answer keeps what was generated", tag="chat",
                             query=f"{_API}:UserQuery", response=f"{_API}:CancelOut", status=202),
                 *openai.CHAT_ROUTES,
                 *coze.CHAT_ROUTES,
                 *dify.CHAT_ROUTES,
             )),
             memory_mb=1024, timeout_s=600, layers=("base", "aws", "web", "search", "embed", "llm", "tools"),
             # A chatflow agent's turn runs its chatflow here (docs/adr/0037): the workflow run store
             # (payloads), and what nodes call (uploads for document extractors, fetch and sandbox;
             # tools: MCP servers through the MCP function, workflow tools as runs of the interpreter).
             # A smart-reasoning turn calls tools the same way (docs/adr/0040).
             access=(*EMBED_ACCESS, bucket("payloads", "read", "write"), bucket("uploads", "read", prefix="tenants/"),
                     invoke("workflow-fetch"), invoke("workflow-code"), invoke("tools-mcp"),
                     state_machine("workflow-run", "start")),
             description="Chat turns (retrieval, prompt, streamed answer; a chatflow agent's chatflow run) served by "
                         "a function URL"),
    Function("chat-reap-turns", "functions.chat.reap_turns", _C,
             Schedule("rate(1 minute)", "End chat turns stuck in running past the bound"),
             access=(DATABASE, REDIS),
             description="Fails turns whose generator stopped (crash, timeout) and closes their event streams"),
)

