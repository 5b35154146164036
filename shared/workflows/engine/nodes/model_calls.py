"""What the nodes that ask a model for a decision (question classifier, parameter extractor)
share: one gateway call read to its end (no text streamed: the answer is a choice, not prose),
its tokens counted as they are spent, and the JSON object found in an answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.models.spec import Capability
from shared.models.types import ChatEvent, ChatRequest, StreamEnd, TextDelta, ToolCallDelta
from shared.workflows.configs import ModelRef
from shared.workflows.engine.nodes.base import NodeCall


@dataclass
class ModelAnswer:
    text: str = ""
    # Each tool call the model made, in order: (name, arguments JSON text).
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"

    @property
    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def has_capability(call: NodeCall[Any], model: ModelRef, capability: Capability) -> bool:
    """Whether the node's model (its own, else the tenant's default) declares ``capability``."""
    target = call.ports.models.target(call.context.tenant_id, model.name, Capability.CHAT)
    return bool(target.spec.has(capability))


def request_options(model: ModelRef) -> dict[str, Any]:
    return {"temperature": model.temperature, "top_p": model.top_p, "max_tokens": model.max_tokens,
            "stop": list(model.stop)}


def ask(call: NodeCall[Any], model: ModelRef, request: ChatRequest) -> ModelAnswer:
    """The model's whole answer; its tokens are spent on the node (whatever comes of them)."""
    events, _quota, _model = call.ports.models.stream_chat(call.context.tenant_id, request, model=model.name)
    answer = _consume(call, events)
    call.spend(answer.prompt_tokens + answer.completion_tokens)
    return answer


def _consume(call: NodeCall[Any], events: Iterator[ChatEvent]) -> ModelAnswer:
    answer = ModelAnswer()
    text: list[str] = []
    calls: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    try:
        for event in events:
            if call.cancelled.is_set():
                break  # the attempt timed out: stop reading (closing stops the generation)
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ToolCallDelta):
                calls.setdefault(event.index, []).append(event.arguments)
                if event.name:
                    names[event.index] = event.name
            elif isinstance(event, StreamEnd):
                answer.finish_reason = event.stop_reason
                if event.usage is not None:
                    answer.prompt_tokens = event.usage.input_tokens
                    answer.completion_tokens = event.usage.output_tokens
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    answer.text = "".join(text)
    answer.tool_calls = [(names.get(index, ""), "".join(parts)) for index, parts in sorted(calls.items())]
    return answer


def json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (a bare answer, one in a code fence, or one amid
    prose), None when there is none."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    # A bounded number of tries: each may read to the end of the text (an unterminated string).
    for _ in range(_MAX_TRIES):
        if start == -1:
            break
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


_MAX_TRIES = 32
