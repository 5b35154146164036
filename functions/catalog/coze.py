"""Coze's OpenAPI over Stratus (docs/coze-api.md, docs/adr/0043-coze-facade.md): what the official
``cozepy`` SDK calls with ``base_url=<stratus>/coze``. JSON calls are HTTP API routes answering in
the ``coze`` dialect; what streams (``/coze/v3/chat``) is served by the streaming function that
already serves the underlying service."""

from __future__ import annotations

from shared.catalog import DATABASE, REDIS, Access, Facade, Function, Http, SseEvent, StreamRoute

DIALECT = "coze"
FACADES = (Facade("coze", "/coze", DIALECT, "/coze",
                  "Coze OpenAPI: a bot is an agent; chats, conversations and messages are Stratus's"),)
TAG = "coze"
_CHAT = "shared.facades.coze.chat"
_CONV = "shared.facades.coze.conversations"

# Served by the chat function (functions/catalog/chat.py adds the prefix and the routes): every
# path under it reaches the function URL, so polling and cancel are its routes too.
CHAT_PREFIX = "/coze/v3/chat"
_CHAT_EVENTS = (
    SseEvent("conversation.chat.created", f"{_CHAT}:CozeChat", "The chat is admitted (status created)"),
    SseEvent("conversation.chat.in_progress", f"{_CHAT}:CozeChat", "The agent is answering"),
    SseEvent("conversation.message.delta", f"{_CHAT}:CozeMessage", "A piece of the answer (type answer)"),
    SseEvent("conversation.message.completed", f"{_CHAT}:CozeMessage",
             "A whole message: a smart-reasoning agent's tool call (function_call) or its result "
             "(tool_response), then the answer"),
    SseEvent("conversation.chat.completed", f"{_CHAT}:CozeChat",
             "The chat ended (status completed, or canceled) with its usage"),
    SseEvent("conversation.chat.requires_action", f"{_CHAT}:CozeChat",
             "The chat waits on client tools: required_action lists the calls (submit_tool_outputs), then done"),
    SseEvent("conversation.chat.failed", f"{_CHAT}:CozeChat", "The chat failed: last_error (the answer is "
                                                               "stored failed)"),
    SseEvent("error", "shared.facades.coze.wire:CozeErrorBody", "The chat failed before it began"),
    SseEvent("done", f"{_CHAT}:CozeDone", "The last event: data \"[DONE]\""),
)
CHAT_ROUTES = (
    StreamRoute("POST", CHAT_PREFIX, "agent:run",
                "Coze chat: the agent `bot_id` answers the last of additional_messages; stream: true answers Coze's "
                "events, else the chat in_progress at once (poll /coze/v3/chat/retrieve)",
                tag=TAG, body=f"{_CHAT}:CozeChatRequest", query=f"{_CHAT}:CozeChatQuery", response=f"{_CHAT}:CozeChat",
                events=_CHAT_EVENTS, dialect=DIALECT, operation_id="coze-chat"),
    StreamRoute("GET", CHAT_PREFIX + "/retrieve", "agent:run", "Coze: one chat (its answer's status and usage)",
                tag=TAG, query=f"{_CHAT}:CozeChatRef", response=f"{_CHAT}:CozeChat", dialect=DIALECT,
                operation_id="coze-chat-retrieve"),
    # cozepy 0.20 sends the retrieve as a POST (with the same query string).
    StreamRoute("POST", CHAT_PREFIX + "/retrieve", "agent:run", "Coze: one chat, as cozepy asks for it (POST)",
                tag=TAG, query=f"{_CHAT}:CozeChatRef", response=f"{_CHAT}:CozeChat", dialect=DIALECT,
                operation_id="coze-chat-retrieve-post"),
    StreamRoute("GET", CHAT_PREFIX + "/message/list", "agent:run",
                "Coze: a chat's messages besides the question (tool calls and results, then the answer)",
                tag=TAG, query=f"{_CHAT}:CozeChatRef", response=f"{_CHAT}:CozeMessages", dialect=DIALECT,
                operation_id="coze-chat-messages"),
    StreamRoute("POST", CHAT_PREFIX + "/submit_tool_outputs", "agent:run",
                "Coze: continue a chat waiting on client tools (requires_action) with their outputs; stream: true "
                "answers the rest as Coze's events, else the chat in_progress at once (poll /coze/v3/chat/retrieve)",
                tag=TAG, body=f"{_CHAT}:CozeSubmitToolOutputs", query=f"{_CHAT}:CozeChatRef",
                response=f"{_CHAT}:CozeChat", events=_CHAT_EVENTS, dialect=DIALECT,
                operation_id="coze-chat-submit-tool-outputs"),
    StreamRoute("POST", CHAT_PREFIX + "/cancel", "agent:run",
                "Coze: stop a running chat; the answer keeps what was generated", tag=TAG,
                body=f"{_CHAT}:CozeChatRef", response=f"{_CHAT}:CozeChat", dialect=DIALECT,
                operation_id="coze-chat-cancel"),
)

# Served by the workflow-stream function (functions/catalog/workflows.py adds the prefixes and the
# routes): two prefixes, four CloudFront behaviours, for all ten workflow routes (docs/adr/0049).
WORKFLOW_PREFIX = "/coze/v1/workflow"
WORKFLOWS_PREFIX = "/coze/v1/workflows"
# Reading the catalogue: a viewer (workflow:read) may, and so may a key that runs workflows.
_READ = "workflow:read|workflow:run"
_WF = "shared.facades.coze.workflows"
_RUN_EVENTS = (
    SseEvent("Message", f"{_WF}:CozeWorkflowMessage", "The end node's output: the run's outputs as a JSON string, "
                                                      "with the run's usage"),
    SseEvent("Error", f"{_WF}:CozeWorkflowErrorData", "The run failed or was cancelled"),
    SseEvent("Interrupt", f"{_WF}:CozeWorkflowInterrupt",
             "The run waits for a human-input node's answer: send interrupt_data to stream_resume; the stream ends"),
    SseEvent("Done", f"{_WF}:CozeWorkflowDone", "The run is over; the stream ends"),
)
_WORKFLOW = WORKFLOWS_PREFIX + "/{workflow_id}"
WORKFLOW_ROUTES = (
    StreamRoute("POST", WORKFLOW_PREFIX + "/run", "workflow:run",
                "Coze: run a workflow's latest published version with `parameters`; waits up to 25 s for its outputs "
                "(`data`, a JSON string), or `is_async: true` answers its `execute_id` at once",
                tag=TAG, body=f"{_WF}:CozeWorkflowRunRequest", response=f"{_WF}:CozeWorkflowRunAnswer",
                whole_body=True, dialect=DIALECT, operation_id="coze-workflow-run"),
    StreamRoute("POST", WORKFLOW_PREFIX + "/stream_run", "workflow:run",
                "Coze: run a workflow, answering Coze's workflow events (each with an `id:` line)",
                tag=TAG, body=f"{_WF}:CozeWorkflowStreamRequest", events=_RUN_EVENTS, dialect=DIALECT,
                operation_id="coze-workflow-stream-run"),
    StreamRoute("POST", WORKFLOW_PREFIX + "/stream_resume", "workflow:run",
                "Coze: answer the form an Interrupt showed (`resume_data`) and stream the rest of the run",
                tag=TAG, body=f"{_WF}:CozeWorkflowResumeRequest", events=_RUN_EVENTS, dialect=DIALECT,
                operation_id="coze-workflow-stream-resume"),
    StreamRoute("GET", WORKFLOWS_PREFIX, _READ,
                "Coze: the tenant's workflows (a bound key's one), most recently changed first",
                tag=TAG, query=f"{_WF}:CozeWorkflowListQuery", response=f"{_WF}:CozeWorkflowList", dialect=DIALECT,
                operation_id="coze-workflows-list"),
    StreamRoute("POST", WORKFLOWS_PREFIX + "/chat", "workflow:run",
                "Coze: a chatflow answers the last of additional_messages, as /v3/chat's events",
                tag=TAG, body=f"{_WF}:CozeWorkflowChatRequest", events=_CHAT_EVENTS, dialect=DIALECT,
                operation_id="coze-workflows-chat"),
    StreamRoute("GET", _WORKFLOW, _READ, "Coze: one workflow",
                tag=TAG, response=f"{_WF}:CozeWorkflowInfo", dialect=DIALECT, operation_id="coze-workflows-get"),
    StreamRoute("GET", _WORKFLOW + "/versions", _READ, "Coze: a workflow's published versions, newest first",
                tag=TAG, query=f"{_WF}:CozeWorkflowVersionsQuery", response=f"{_WF}:CozeWorkflowVersionList",
                dialect=DIALECT, operation_id="coze-workflows-versions"),
    StreamRoute("GET", _WORKFLOW + "/run_histories/{execute_id}", "workflow:run",
                "Coze: one run of the workflow (execute_status Success, Running or Fail; output; error; usage)",
                tag=TAG, response=f"{_WF}:CozeRunHistories", dialect=DIALECT,
                operation_id="coze-workflows-run-history"),
)


def coze_http(name: str, module: str, method: str, path: str, summary: str, *, permission: str = "agent:run",
              access: tuple[Access, ...] = (DATABASE, REDIS), domain: str = "chat") -> Function:
    """A Coze JSON route: an HTTP API function answering in Coze's dialect."""
    return Function(name, f"functions.coze.{module}", domain,
                    Http(method, path, permission=permission, tag=TAG, dialect=DIALECT, summary=summary),
                    access=access)


FUNCTIONS: tuple[Function, ...] = (
    coze_http("coze-users-me", "users_me", "GET", "/coze/v1/users/me",
              "Coze: the user the token belongs to", domain="platform"),
    # Conversations and their messages (the conversation service's).
    coze_http("coze-conversations-create", "conversation_create", "POST", "/coze/v1/conversation/create",
              "Coze: start a conversation with the agent bot_id (the token owner's own)"),
    coze_http("coze-conversations-retrieve", "conversation_retrieve", "GET", "/coze/v1/conversation/retrieve",
              "Coze: one conversation, by conversation_id"),
    coze_http("coze-conversations-list", "conversations_list", "GET", "/coze/v1/conversations",
              "Coze: the conversations with the agent bot_id (the token owner's, or user_id's), most recently "
              "active first"),
    coze_http("coze-conversations-update", "conversation_update", "PUT", "/coze/v1/conversations/{conversation_id}",
              "Coze: rename a conversation"),
    coze_http("coze-conversations-delete", "conversation_delete", "DELETE",
              "/coze/v1/conversations/{conversation_id}", "Coze: delete a conversation"),
    coze_http("coze-conversations-clear", "conversation_clear", "POST",
              "/coze/v1/conversations/{conversation_id}/clear",
              "Coze: clear a conversation's context (refused: not supported, docs/coze-api.md)"),
    coze_http("coze-messages-create", "message_create", "POST", "/coze/v1/conversation/message/create",
              "Coze: add a message outside a chat (refused: messages are written by chats)"),
    coze_http("coze-messages-list", "message_list", "POST", "/coze/v1/conversation/message/list",
              "Coze: a conversation's messages, paged by message ids (first_id, last_id, has_more)"),
    coze_http("coze-messages-retrieve", "message_retrieve", "GET", "/coze/v1/conversation/message/retrieve",
              "Coze: one message of a conversation"),
    coze_http("coze-messages-modify", "message_modify", "POST", "/coze/v1/conversation/message/modify",
              "Coze: edit a message (refused: messages are written by chats)"),
    coze_http("coze-messages-delete", "message_delete", "POST", "/coze/v1/conversation/message/delete",
              "Coze: delete a message (refused: messages are written by chats)"),
)
