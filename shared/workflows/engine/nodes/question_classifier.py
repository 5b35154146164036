"""question_classifier: the model picks the class the query's text belongs to, and the run
continues on the edges leaving by that class's id (Dify's ``question-classifier``).

One call through the model gateway (the tenant's model of ``model.name``, else its default chat
model; quotas, retries, fallback and usage are the gateway's). The prompt lists the classes (id
and name) and the node's ``instruction`` (a template); the model answers
``{"category_id", "category_name"}`` — through the provider's native structured output, its ids
as an enum, when the model declares ``structured_output``, else as asked in the prompt. The
answer is read as Dify reads it: the class whose id the answer names, else the class whose name
it names; an answer naming neither picks the first class (Dify's fallback), logged.

Outputs ``class_name``, ``class_id`` and ``usage`` ({prompt_tokens, completion_tokens,
total_tokens}); the tokens count on the node. An empty query fails the node
(``question_classifier_query_empty``); provider errors keep their codes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.models.spec import Capability
from shared.models.types import ChatRequest, Message
from shared.workflows.configs import ClassifierClass, QuestionClassifierConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput
from shared.workflows.engine.nodes.model_calls import ask, has_capability, json_object, request_options
from shared.workflows.variables import to_text

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You sort a text into exactly one category. The categories, as JSON (each with its category_id and "
    "category_name, which says what belongs in it):\n{categories}\n{instruction}"
    "Read the user's text and answer with one JSON object naming the category that fits it best: "
    '{{"category_id": "<its id>", "category_name": "<its name>"}}. Answer with that object only.')
INSTRUCTION = "Follow these instructions when you choose:\n{instruction}\n"


def resolve(call: NodeCall[QuestionClassifierConfig]) -> dict[str, Any]:
    config = call.config
    return {"query": to_text(call.pool.get_or_none(config.query_variable_selector)),
            "instruction": call.pool.render(config.instruction), "model": config.model.name}


def answer_schema(classes: list[ClassifierClass]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["category_id", "category_name"],
            "properties": {"category_id": {"type": "string", "enum": [item.id for item in classes]},
                           "category_name": {"type": "string"}}}


def request_for(call: NodeCall[QuestionClassifierConfig], query: str, instruction: str) -> ChatRequest:
    config = call.config
    categories = json.dumps([{"category_id": item.id, "category_name": item.name} for item in config.classes],
                            ensure_ascii=False)
    system = SYSTEM_PROMPT.format(categories=categories,
                                  instruction=INSTRUCTION.format(instruction=instruction) if instruction.strip()
                                  else "")
    native = has_capability(call, config.model, Capability.STRUCTURED_OUTPUT)
    return ChatRequest(messages=[Message(role="system", content=system), Message(role="user", content=query)],
                       response_schema=answer_schema(config.classes) if native else None,
                       response_schema_name="category", **request_options(config.model))


def chosen(classes: list[ClassifierClass], text: str) -> ClassifierClass | None:
    """The class the model's answer names: by id, else by name (None: neither)."""
    by_id = {item.id: item for item in classes}
    by_name = {item.name: item for item in classes}
    answer = json_object(text)
    if answer is not None:
        named_id, named = answer.get("category_id"), answer.get("category_name")
        if isinstance(named_id, str | int) and not isinstance(named_id, bool) and str(named_id) in by_id:
            return by_id[str(named_id)]
        if isinstance(named, str) and named.strip() in by_name:
            return by_name[named.strip()]
        return None
    bare = text.strip().strip("\"'`")
    return by_id.get(bare) or by_name.get(bare)


def execute(call: NodeCall[QuestionClassifierConfig], inputs: dict[str, Any]) -> NodeOutput:
    query: str = inputs["query"]
    if not query.strip():
        raise NodeFailure("question_classifier_query_empty",
                          "The query variable is empty: the classifier needs text to classify")
    classes = call.config.classes
    answer = ask(call, call.config.model, request_for(call, query, inputs["instruction"]))
    picked = chosen(classes, answer.text)
    if picked is None:
        logger.info("question classifier answer named no class; the first class is used",
                    extra={"run_id": call.context.run_id, "node_id": call.node.id})
        picked = classes[0]
    return NodeOutput({"class_name": picked.name, "class_id": picked.id, "usage": answer.usage}, handle=picked.id)


EXECUTOR = NodeExecutor(resolve, execute)
