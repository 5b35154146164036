"""OpenAI chat completions as chat turns. A completion is one turn of the agent named by
``model``, run by the chat service as ``POST /api/v1/chat`` runs it (the same generation
strategy, knowledge and memory limits, events, cancellation and reaper): the last user message
is the question; the messages before it are the history the model remembers (instead of a
stored conversation's); system and developer messages follow the agent's own system prompt.
Each completion is stored as a conversation of one turn for its end user (``user``), so an
answer whose client left is still written whole and can be read back
(docs/adr/0042-compatible-api-facades.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.chat.api import MAX_MESSAGE_CHARS, ChatBody
from shared.errors import NotFound, ValidationFailed
from shared.facades.openai.api import ChatCompletion, ChatCompletionRequest, ChatMessage
from shared.facades.openai.dialect import OPENAI, ChatCompletionStream, _finish_reason, _usage, completion_id, now

if TYPE_CHECKING:
    from shared.auth.principal import Principal
    from shared.cache.ports import StreamEvent
    from shared.chat.service import ChatService, Turn
    from shared.conversations.contract import MessageOut


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model `{model}` does not exist or you do not have access to it.",
                         details={"param": "model", "model": model})


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details={"fields": [{"field": field, "message": message,
                                                                        "type": "value_error"}]})


def _text(message: ChatMessage, index: int) -> str:
    """A message's text: its string, or its text parts joined (other parts are refused)."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for number, part in enumerate(content):
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        else:
            raise _invalid(f"messages.{index}.content.{number}.type",
                           f"content parts of type {kind!r} are not supported: send text parts")
    return "\n".join(texts)


@dataclass(frozen=True)
class Dialogue:
    """``messages`` as a chat turn takes them."""

    question: str
    history: list[tuple[str, str]]
    instructions: str


def dialogue(messages: list[ChatMessage]) -> Dialogue:
    """The question (the trailing user messages), the (question, answer) turns before it and
    the client's system text. An assistant message before any user message (an opening line)
    carries no turn and is left out."""
    instructions: list[str] = []
    history: list[tuple[str, str]] = []
    asked: list[str] = []
    answered: list[str] = []
    for index, message in enumerate(messages):
        if message.role in ("tool", "function") or message.tool_calls or message.function_call:
            field = f"messages.{index}" + (".role" if message.role in ("tool", "function") else ".tool_calls")
            raise _invalid(field, "tool messages and tool calls are not supported: the agent calls its own tools")
        text = _text(message, index)
        if message.role in ("system", "developer"):
            if text.strip():
                instructions.append(text)
        elif message.role == "user":
            if answered:
                history.append(("\n\n".join(asked), "\n\n".join(answered)))
                asked, answered = [], []
            asked.append(text)
        elif asked:  # an answer to the questions before it
            answered.append(text)
    if not asked or answered:
        raise _invalid("messages", "the last message must be the user's (role user)")
    question = "\n\n".join(asked)
    last = len(messages) - 1
    if not question.strip():
        raise _invalid(f"messages.{last}.content", "the user's message is empty")
    if len(question) > MAX_MESSAGE_CHARS:
        raise _invalid(f"messages.{last}.content", f"the user's message is over {MAX_MESSAGE_CHARS} characters")
    return Dialogue(question, history, "\n\n".join(instructions))


@dataclass(frozen=True)
class Completion:
    """A started completion: the chat turn and what its answer repeats."""

    turn: Turn
    id: str
    model: str
    created: int
    include_usage: bool


def chat_completion(completion: Completion, message: MessageOut) -> ChatCompletion:
    return ChatCompletion.model_validate({
        "id": completion.id, "created": completion.created, "model": completion.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": message.content},
                     "finish_reason": _finish_reason(message.stop_reason)}],
        "usage": _usage(message.usage)})


class OpenAIChat:
    def __init__(self, chat: Callable[[], ChatService]) -> None:
        self._chat = chat

    def start(self, principal: Principal, body: ChatCompletionRequest) -> Completion:
        """Admit the turn (every refusal is an error before any byte of the answer)."""
        from shared.agents.errors import AgentNotFound
        from shared.conversations.errors import AgentNotAllowed

        said = dialogue(body.messages)
        request = ChatBody.model_construct(agent_id=body.model, conversation_id=None, message=said.question,
                                           user=body.user, inputs=body.inputs, stream=bool(body.stream), draft=False)
        try:
            turn = self._chat().start(principal, request, history=said.history, instructions=said.instructions)
        except (AgentNotFound, AgentNotAllowed):
            # Another tenant's agent, another agent than the key's, or none at all: OpenAI's 404.
            raise ModelNotFound(body.model) from None
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return Completion(turn, completion_id(turn.answer_id), body.model, now(), include_usage)

    def complete(self, completion: Completion) -> ChatCompletion:
        """Run the turn to its end: the ``chat.completion``, or the turn's error."""
        from shared.chat.service import TurnFailed

        final, error = self._chat().run(completion.turn)
        if error is not None:
            raise TurnFailed(error, final)
        return chat_completion(completion, final)

    def run(self, completion: Completion, emit: Callable[[StreamEvent], None]) -> Any:
        return self._chat().run(completion.turn, emit)

    @staticmethod
    def stream(completion: Completion) -> ChatCompletionStream:
        return OPENAI.chat_stream(completion.id, completion.model, completion.created, completion.include_usage)


def openai_chat() -> OpenAIChat:
    from shared.chat.wiring import chat_service

    return OpenAIChat(chat_service)

