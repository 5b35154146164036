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
    SseEvent("conversation.chat.failed", f"{_CHAT}:CozeChat", "The chat failed: last_error (the answer is "
                                                               "stored failed)"),
    SseEvent("error", "shared.facades.coze.wire:CozeErrorBody", "The chat failed before it began"),
    SseEvent("done", f"{_CHAT}:DoneData", "The last event: data \"[DONE]\""),
)
CHAT_ROUTES = (
    StreamRoute("POST", CHAT_PREFIX, "agent:run",
                "Coze chat: the agent `bot_id` answers the last of additional_messages; stream: true answers Coze's "
                "events, else the chat in_progress at once (poll /coze/v3/chat/retrieve)",
                tag=TAG, body=f"{_CHAT}:CozeChatRequest", query=f"{_CHAT}:ChatQuery", response=f"{_CHAT}:CozeChat",
                events=_CHAT_EVENTS, dialect=DIALECT, operation_id="coze-chat"),
    StreamRoute("GET", CHAT_PREFIX + "/retrieve", "agent:run", "Coze: one chat (its answer's status and usage)",
                tag=TAG, query=f"{_CHAT}:ChatRef", response=f"{_CHAT}:CozeChat", dialect=DIALECT,
                operation_id="coze-chat-retrieve"),
    # cozepy 0.20 sends the retrieve as a POST (with the same query string).
    StreamRoute("POST", CHAT_PREFIX + "/retrieve", "agent:run", "Coze: one chat, as cozepy asks for it (POST)",
                tag=TAG, query=f"{_CHAT}:ChatRef", response=f"{_CHAT}:CozeChat", dialect=DIALECT,
                operation_id="coze-chat-retrieve-post"),
    StreamRoute("GET", CHAT_PREFIX + "/message/list", "agent:run",
                "Coze: a chat's messages besides the question (tool calls and results, then the answer)",
                tag=TAG, query=f"{_CHAT}:ChatRef", response=f"{_CHAT}:CozeMessages", dialect=DIALECT,
                operation_id="coze-chat-messages"),
    StreamRoute("POST", CHAT_PREFIX + "/cancel", "agent:run",
                "Coze: stop a running chat; the answer keeps what was generated", tag=TAG,
                body=f"{_CHAT}:ChatRef", response=f"{_CHAT}:CozeChat", dialect=DIALECT,
                operation_id="coze-chat-cancel"),
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
)
