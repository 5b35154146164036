"""The chat function: an ASGI app behind a function URL (the Lambda Web Adapter runs it in AWS;
the local gateway mounts it). Each handler serves one of the catalog entry's routes, which
gives its permission, models and answer: parse → one service call → envelope or event stream.
OpenAI's chat completions, Coze's chats and Dify's chat and completion messages are turns too
(docs/adr/0042-compatible-api-facades.md, docs/adr/0046-dify-service-api.md): their routes answer
in their API's dialect, through the facade's translation of the same turn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.catalog import function_for_module
from shared.chat.api import ChatBody, ToolOutputsBody, UserQuery
from shared.chat.wiring import chat_service
from shared.config import get_settings
from shared.conversations import paths
from shared.facades.coze.chat import CozeChatQuery, CozeChatRef, CozeChatRequest, CozeSubmitToolOutputs
from shared.facades.dify.api import DifyChatMessageRequest, DifyCompletionMessageRequest, DifyUserBody
from shared.facades.openai.api import ChatCompletionRequest
from shared.http.stream import Answer, StreamCall, blocking, in_own_thread, stream_app

if TYPE_CHECKING:
    from shared.chat.service import Turn

api = stream_app(function_for_module(__name__), heartbeat_s=lambda: get_settings().chat_heartbeat_s)


@api.route("POST", "/api/v1/chat")
async def chat(call: StreamCall[ChatBody, None]) -> Answer:
    service = chat_service()
    turn = await blocking(lambda: service.start(call.principal, call.body, client_tools=True))
    return await _run_turn(call, turn, call.body.stream)


@api.route("POST", "/api/v1/chat/{message_id}/tool-outputs")
async def tool_outputs(call: StreamCall[ToolOutputsBody, None]) -> Answer:
    message_id = paths.message_id(call.path_params["message_id"])
    turn = await blocking(lambda: chat_service().resume(call.principal, message_id, call.body))
    return await _run_turn(call, turn, call.body.stream)


async def _run_turn(call: StreamCall[Any, None], turn: Turn, stream: bool) -> Answer:
    service = chat_service()
    if not stream:
        final, error = await in_own_thread(lambda: service.run(turn), "chat-turn")
        if error is not None:
            from shared.chat.service import TurnFailed

            raise TurnFailed(error, final)
        return call.ok(final)
    return call.stream(lambda emit: service.run(turn, emit), "chat-turn")


@api.route("GET", "/api/v1/chat/{message_id}/events")
async def events(call: StreamCall[None, UserQuery]) -> Answer:
    message_id = paths.message_id(call.path_params["message_id"])
    after, heartbeat_ms = call.last_event_id, int(call.heartbeat_s * 1000)
    batches = await blocking(lambda: chat_service().replay(call.principal, message_id, call.query.user, after,
                                                           heartbeat_ms))
    return call.follow(batches, "chat-replay")


@api.route("POST", "/api/v1/chat/{message_id}/cancel")
async def cancel(call: StreamCall[None, UserQuery]) -> Answer:
    message_id = paths.message_id(call.path_params["message_id"])
    return call.ok(await blocking(lambda: chat_service().cancel(call.principal, message_id, call.query.user)))


@api.route("POST", "/openai/v1/chat/completions")
async def openai_chat_completions(call: StreamCall[ChatCompletionRequest, None]) -> Answer:
    from shared.facades.openai.chat import openai_chat

    facade = openai_chat()
    completion = await blocking(lambda: facade.start(call.principal, call.body))
    if not call.body.stream:
        return call.ok(await in_own_thread(lambda: facade.complete(completion), "chat-turn"))
    return call.stream(lambda emit: facade.run(completion, emit), "chat-turn", translator=facade.stream(completion))


@api.route("POST", "/coze/v3/chat")
async def coze_chat(call: StreamCall[CozeChatRequest, CozeChatQuery]) -> Answer:
    from shared.facades.coze.chat import CozeChatStream, coze_chats

    facade = coze_chats()
    chat = await blocking(lambda: facade.start(call.principal, call.body, call.query.conversation_id))
    if not call.body.stream:
        # Coze answers the chat in progress at once; the client polls /coze/v3/chat/retrieve.
        return call.ok_then(chat.chat("in_progress"), in_own_thread(lambda: facade.run(chat), "chat-turn"))
    return call.stream(lambda emit: facade.run(chat, emit), "chat-turn", translator=CozeChatStream(chat))


@api.route("POST", "/coze/v3/chat/submit_tool_outputs")
async def coze_chat_submit_tool_outputs(call: StreamCall[CozeSubmitToolOutputs, CozeChatRef]) -> Answer:
    from shared.facades.coze.chat import CozeChatStream, coze_chats

    facade = coze_chats()
    chat = await blocking(lambda: facade.submit_tool_outputs(call.principal, call.query, call.body))
    if not call.body.stream:
        return call.ok_then(chat.chat("in_progress"), in_own_thread(lambda: facade.run(chat), "chat-turn"))
    return call.stream(lambda emit: facade.run(chat, emit), "chat-turn",
                       translator=CozeChatStream(chat, resumed=True))


@api.route("GET", "/coze/v3/chat/retrieve")
async def coze_chat_retrieve(call: StreamCall[None, CozeChatRef]) -> Answer:
    from shared.facades.coze.chat import coze_chats

    return call.ok(await blocking(lambda: coze_chats().retrieve(call.principal, call.query)))


@api.route("POST", "/coze/v3/chat/retrieve")
async def coze_chat_retrieve_post(call: StreamCall[None, CozeChatRef]) -> Answer:
    return await coze_chat_retrieve(call)


@api.route("GET", "/coze/v3/chat/message/list")
async def coze_chat_messages(call: StreamCall[None, CozeChatRef]) -> Answer:
    from shared.facades.coze.chat import coze_chats

    return call.ok(await blocking(lambda: coze_chats().messages(call.principal, call.query)))


@api.route("POST", "/coze/v3/chat/cancel")
async def coze_chat_cancel(call: StreamCall[CozeChatRef, None]) -> Answer:
    from shared.facades.coze.chat import coze_chats

    return call.ok(await blocking(lambda: coze_chats().cancel(call.principal, call.body)))


async def _dify_message(call: StreamCall[DifyChatMessageRequest | DifyCompletionMessageRequest, None],
                        start: str) -> Answer:
    from shared.facades.dify.service import dify_service

    facade = dify_service()
    body = call.body
    started = await blocking(lambda: getattr(facade, start)(call.principal, body))
    if body.response_mode == "blocking":
        return call.ok(await in_own_thread(lambda: facade.complete(started), "chat-turn"))
    return call.stream(lambda emit: facade.run(started, emit), "chat-turn", translator=started.stream())


@api.route("POST", "/dify/v1/chat-messages")
async def dify_chat_messages(call: StreamCall[DifyChatMessageRequest, None]) -> Answer:
    return await _dify_message(call, "start_chat")  # type: ignore[arg-type]


@api.route("POST", "/dify/v1/completion-messages")
async def dify_completion_messages(call: StreamCall[DifyCompletionMessageRequest, None]) -> Answer:
    return await _dify_message(call, "start_completion")  # type: ignore[arg-type]


async def _dify_stop(call: StreamCall[DifyUserBody, None], route: str) -> Answer:
    from shared.facades.dify.service import dify_service

    task_id, user = call.path_params["task_id"], call.body.user
    return call.ok(await blocking(lambda: dify_service().stop_message(call.principal, route, task_id, user)))


@api.route("POST", "/dify/v1/chat-messages/{task_id}/stop")
async def dify_chat_messages_stop(call: StreamCall[DifyUserBody, None]) -> Answer:
    return await _dify_stop(call, "POST /dify/v1/chat-messages/{task_id}/stop")


@api.route("POST", "/dify/v1/completion-messages/{task_id}/stop")
async def dify_completion_messages_stop(call: StreamCall[DifyUserBody, None]) -> Answer:
    return await _dify_stop(call, "POST /dify/v1/completion-messages/{task_id}/stop")


app = api.asgi()
