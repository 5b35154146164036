"""llm: one model call through the model gateway (the tenant's model of ``model.name``, else
its default chat model; quotas, retries, fallback and usage are the gateway's), streamed: each
text delta is a ``text_chunk`` event as it arrives.

The prompt messages are templates: ``{{#node.field#}}`` references and ``{{#context#}}``, which
is the context variable (``context.variable_selector``) as Dify builds it: a string as it is; a
list (knowledge retrieval's ``result``) as each item's ``content`` (or the item, for strings),
one per line. Messages that render empty are left out (Dify's rule), and a prompt left with
none fails (``llm_prompt_empty``).

Structured output: the model answers JSON matching ``structured_output.schema`` — through the
provider's native mode (``response_format`` json_schema, a forced tool for Anthropic) when the
model declares the ``structured_output`` capability, else by an instruction in the system
prompt. The answer is parsed (a fenced ```json block too) and checked against the schema into
``structured_output``; an answer that does not parse or match fails the node with
``llm_structured_output_invalid``. Provider errors keep their own codes
(``model_context_too_long``, ``model_rate_limited``…).

Outputs: ``text``, ``usage`` ({prompt_tokens, completion_tokens, total_tokens}),
``finish_reason``, and ``structured_output`` when enabled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from shared.models.spec import Capability
from shared.models.types import ChatEvent, ChatRequest, Message, StreamEnd, TextDelta, ToolCallDelta
from shared.workflows.configs import LlmConfig
from shared.workflows.engine import json_schema
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput
from shared.workflows.variables import TEMPLATE_REFERENCE, VariablePool, to_text

CONTEXT_REFERENCE = "{{#context#}}"
# One pass over both kinds of reference: a value that itself contains "{{#...#}}" is never
# rendered again.
_REFERENCES = re.compile(re.escape(CONTEXT_REFERENCE) + "|" + TEMPLATE_REFERENCE.pattern)
_FENCED = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
STRUCTURED_INSTRUCTION = (
    "Answer with one JSON object that matches the following JSON Schema, and nothing else "
    "(no prose, no code fence):\n{schema}")


def context_text(value: Any) -> str:
    """The ``{{#context#}}`` text of a context variable's value, as Dify builds it."""
    if value is None:
        return ""
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, str):
                lines.append(item)
            elif isinstance(item, dict) and "content" in item:
                lines.append(to_text(item["content"]))
            else:
                raise NodeFailure("llm_invalid_context",
                                  "Each item of the context variable must be text or have a 'content' field "
                                  "(as knowledge retrieval results do)")
        return "\n".join(lines).strip()
    return to_text(value)


def render(text: str, pool: VariablePool, context: str) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(0) == CONTEXT_REFERENCE:
            return context
        return to_text(pool.get_or_none(match.group(1).split(".")))
    return _REFERENCES.sub(value, text)


def resolve(call: NodeCall[LlmConfig]) -> dict[str, Any]:
    config = call.config
    context = ""
    if config.context.enabled and config.context.variable_selector:
        context = context_text(call.pool.get_or_none(config.context.variable_selector))
    messages = [{"role": message.role, "text": render(message.text, call.pool, context)}
                for message in config.prompt_template]
    inputs: dict[str, Any] = {"model": config.model.name, "messages": [m for m in messages if m["text"]]}
    if context:
        inputs["context"] = context
    return inputs


def _native_structured_output(call: NodeCall[LlmConfig]) -> bool:
    target = call.ports.models.target(call.context.tenant_id, call.config.model.name, Capability.CHAT)
    return bool(target.spec.has(Capability.STRUCTURED_OUTPUT))


def _request(call: NodeCall[LlmConfig], messages: list[dict[str, str]]) -> ChatRequest:
    config = call.config
    chat = [Message(role=m["role"], content=m["text"]) for m in messages]  # type: ignore[arg-type]
    schema: dict[str, Any] | None = None
    if config.structured_output.enabled:
        schema = config.structured_output.json_schema or {"type": "object"}
        if not _native_structured_output(call):
            instruction = STRUCTURED_INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False))
            if chat and chat[0].role == "system":
                chat[0] = Message(role="system", content=f"{chat[0].content}\n\n{instruction}")
            else:
                chat.insert(0, Message(role="system", content=instruction))
            schema = None
    return ChatRequest(messages=chat, response_schema=schema, temperature=config.model.temperature,
                       top_p=config.model.top_p, max_tokens=config.model.max_tokens, stop=list(config.model.stop))


def parse_structured(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON answer as an object matching ``schema``; raises NodeFailure."""
    fenced = _FENCED.match(text)
    raw = fenced.group(1) if fenced else text
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise NodeFailure("llm_structured_output_invalid",
                          f"The model's answer is not JSON ({exc.msg} at character {exc.pos}); adjust the "
                          f"prompt or the schema, or use a model with native structured output") from exc
    if not isinstance(value, dict):
        raise NodeFailure("llm_structured_output_invalid",
                          f"The model answered a JSON {type(value).__name__}, not the object the schema describes")
    found = json_schema.problems(value, schema)
    if found:
        raise NodeFailure("llm_structured_output_invalid",
                          "The model's answer does not match the schema: " + "; ".join(found),
                          details={"problems": found})
    return value


def execute(call: NodeCall[LlmConfig], inputs: dict[str, Any]) -> NodeOutput:
    messages: list[dict[str, str]] = inputs["messages"]
    if not messages:
        raise NodeFailure("llm_prompt_empty", "Every prompt message rendered empty: give the model something to answer")
    config = call.config
    events, _quota, _model = call.ports.models.stream_chat(call.context.tenant_id, _request(call, messages),
                                                            model=config.model.name)
    text, arguments, end = _consume(call, events)
    usage = end.usage if end is not None else None
    prompt_tokens = usage.input_tokens if usage else 0
    completion_tokens = usage.output_tokens if usage else 0
    call.spend(prompt_tokens + completion_tokens)
    answer = "".join(text) or "".join(arguments)
    outputs: dict[str, Any] = {
        "text": answer,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "finish_reason": end.stop_reason if end is not None else "stop",
    }
    if config.structured_output.enabled:
        outputs["structured_output"] = parse_structured(answer, config.structured_output.json_schema)
    return NodeOutput(outputs)


def _consume(call: NodeCall[LlmConfig], events: Iterator[ChatEvent]) -> tuple[list[str], list[str], StreamEnd | None]:
    text: list[str] = []
    arguments: list[str] = []  # a structured answer given as a forced tool call (Anthropic)
    end: StreamEnd | None = None
    try:
        for event in events:
            if call.cancelled.is_set():
                break  # the attempt timed out: stop reading (closing stops the generation)
            if isinstance(event, TextDelta) and event.text:
                text.append(event.text)
                call.chunk(event.text)
            elif isinstance(event, ToolCallDelta):
                arguments.append(event.arguments)
            elif isinstance(event, StreamEnd):
                end = event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    return text, arguments, end


EXECUTOR = NodeExecutor(resolve, execute)
