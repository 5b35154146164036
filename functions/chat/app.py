"""The chat function: an ASGI app behind a function URL (the Lambda Web Adapter runs it in AWS;
the local gateway mounts it). Each handler serves one of the catalog entry's routes, which
gives its permission, models and answer: parse → one service call → envelope or event stream.
OpenAI's chat completions and Coze's chats are turns too (docs/adr/0042-compatible-api-facades.md): their route
answers in OpenAI's dialect, through the facade's translation of the same turn."""

from __future__ import annotations

from functions.catalog import function_for_module
from shared.chat.api import ChatBody, UserQuery
from shared.chat.wiring import chat_service
from shared.config import get_settings
from shared.conversations import paths
from shared.facades.coze.chat import CozeChatQuery, CozeChatRef, CozeChatRequest
from shared.facades.openai.api import ChatCompletionRequest
from shared.http.stream import Answer, StreamCall, blocking, in_own_thread, stream_app

api = stream_app(function_for_module(__name__), heartbeat_s=lambda: get_settings().chat_heartbeat_s)


@api.route("POST", "/api/v1/chat")
async def chat(call: StreamCall[ChatBody, None]) -> Answer:
    service = chat_service()
    turn = await blocking(lambda: service.start(call.principal, call.body))
    if not call.body.stream:
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


app = api.asgi()
