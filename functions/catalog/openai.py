"""OpenAI's chat completions API over Stratus's agents (docs/adr/0042-compatible-api-facades.md,
docs/compatible-apis.md): what the official ``openai`` SDK calls with
``base_url=<stratus>/openai/v1``. Chat completions stream, so they are routes of the chat
function (its function URL, by path like ``/api/v1/chat``); the model list is an HTTP API route."""

from __future__ import annotations

from shared.catalog import DATABASE, REDIS, Facade, Function, Http, SseEvent, StreamRoute

DIALECT = "openai"
FACADES = (Facade("openai", "/openai", DIALECT, "/openai/v1",
                  "OpenAI chat completions: an agent is a model (its id, or a built-in's slug)"),)
_API = "shared.facades.openai.api"
_TAG = "openai"

# Served by the chat function (functions/catalog/chat.py adds the prefix and the route).
CHAT_COMPLETIONS = "/openai/v1/chat/completions"
CHAT_ROUTES = (
    StreamRoute("POST", CHAT_COMPLETIONS, "agent:run",
                "OpenAI chat completions: the agent named by `model` answers the last user message, the messages "
                "before it as history; `stream: true` answers chat.completion.chunk events then [DONE]",
                tag=_TAG, body=f"{_API}:ChatCompletionRequest", response=f"{_API}:ChatCompletion",
                events=(SseEvent("chat.completion.chunk", f"{_API}:ChatCompletionChunk",
                                 "A piece of the answer (the first opens the assistant message, the last carries "
                                 "finish_reason; with stream_options.include_usage one more with usage and no "
                                 "choices)"),
                        SseEvent("error", f"{_API}:ErrorBody", "The answer failed after the stream began "
                                                               "(the answer is stored failed)")),
                dialect=DIALECT, operation_id="openai-chat-completions"),
)

FUNCTIONS: tuple[Function, ...] = (
    Function("openai-models-list", "functions.openai.list_models", "chat",
             Http("GET", "/openai/v1/models", permission="agent:run", tag=_TAG, dialect=DIALECT,
                  summary="OpenAI models: the agents this key may chat with (published ones and the built-ins; a "
                          "key bound to an agent: that one)"),
             access=(DATABASE, REDIS)),
    Function("openai-models-get", "functions.openai.get_model", "chat",
             Http("GET", "/openai/v1/models/{model}", permission="agent:run", tag=_TAG, dialect=DIALECT,
                  summary="One OpenAI model: an agent this key may chat with, by id or built-in slug"),
             access=(DATABASE, REDIS)),
)
