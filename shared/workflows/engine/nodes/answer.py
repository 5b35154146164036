"""answer (chatflows; Dify's Answer node): its ``answer`` template rendered, each
``{{#node.field#}}`` reference as Dify's answer shows values — text as it is, numbers as
written, an object as indented JSON, a list as Markdown bullet lines, nothing for an absent
value. The output is ``answer``; the text is also emitted as the node's text (``text_chunk``),
which is how an answer inside a container reaches the chat. A top-level answer's text reaches
the chat earlier, piece by piece, through the answer stream (:mod:`shared.workflows.engine.answers`).
"""

from __future__ import annotations

import json
from typing import Any

from shared.workflows.configs import AnswerConfig
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput
from shared.workflows.variables import TEMPLATE_REFERENCE, to_text


def answer_text(value: Any) -> str:
    """A value as an answer shows it (Dify's ``markdown`` of a variable)."""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, indent=2)
    if isinstance(value, list):
        return "\n".join(f"- {to_text(item)}" for item in value)
    return to_text(value)


def resolve(call: NodeCall[AnswerConfig]) -> dict[str, Any]:
    text = TEMPLATE_REFERENCE.sub(lambda match: answer_text(call.pool.get_or_none(match.group(1).split("."))),
                                  call.config.answer)
    return {"answer": text}


def execute(call: NodeCall[AnswerConfig], inputs: dict[str, Any]) -> NodeOutput:
    text = str(inputs["answer"])
    if text:
        call.chunk(text)
    return NodeOutput({"answer": text})


EXECUTOR = NodeExecutor(resolve, execute)
