"""parameter_extractor: the model reads the ``query`` variable's text and answers each declared
parameter, typed (Dify's ``parameter-extractor``).

- ``reasoning_mode: function_call`` with a model that declares ``function_calling``: the
  parameters are the arguments of one tool (``extract_parameters``, its JSON schema built from
  the parameters: types, descriptions, options as an enum, the required ones) that the model
  is made to call (``tool_choice: required``).
- ``prompt`` (or a model without function calling): the prompt carries the same schema and asks
  for one JSON object.

Either way the arguments (or, failing a tool call, the first JSON object of the answer's text)
are checked parameter by parameter, as Dify does: a required parameter missing, a value of
another type, a string outside its options. Numbers given as number text and booleans given as
``"true"``/``"false"`` are converted; items of an array that do not fit are dropped. A parameter
without a valid value answers its type's empty value (``""``, ``0``, ``false``, ``[]``).

Outputs: each parameter; ``__is_success`` (1, or 0 when anything above went wrong: the node
still succeeds, as in Dify); ``__reason`` (None, or what went wrong); ``__usage``
({prompt_tokens, completion_tokens, total_tokens}). A failed model call fails the node with the
provider's code; an empty query fails it (``parameter_extractor_query_empty``).
"""

from __future__ import annotations

import json
from typing import Any

from shared.models.spec import Capability
from shared.models.types import ChatRequest, Message, Tool
from shared.workflows.configs import ExtractedParameter, ParameterExtractorConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput
from shared.workflows.engine.nodes.model_calls import ModelAnswer, ask, has_capability, json_object, request_options
from shared.workflows.validation import value_matches
from shared.workflows.variables import to_text

TOOL_NAME = "extract_parameters"
SYSTEM_PROMPT = (
    "You extract structured parameters from the user's text. Extract only what the text says; leave out a "
    "parameter the text does not give.\n{instruction}")
INSTRUCTION = "Follow these instructions:\n{instruction}\n"
TOOL_PROMPT = f"Call the function {TOOL_NAME} once, with the parameters you extracted as its arguments."
JSON_PROMPT = ("Answer with one JSON object whose fields are the parameters, matching this JSON Schema, and "
               "nothing else (no prose, no code fence):\n{schema}")
EMPTY: dict[str, Any] = {"string": "", "number": 0, "boolean": False}


def resolve(call: NodeCall[ParameterExtractorConfig]) -> dict[str, Any]:
    config = call.config
    return {"query": to_text(call.pool.get_or_none(config.query)), "instruction": call.pool.render(config.instruction),
            "model": config.model.name}


def parameters_schema(parameters: list[ExtractedParameter]) -> dict[str, Any]:
    """The JSON Schema of the parameters (the tool's arguments, or the JSON answer)."""
    properties: dict[str, Any] = {}
    for parameter in parameters:
        schema: dict[str, Any] = {"description": parameter.description} if parameter.description else {}
        if parameter.type.startswith("array["):
            schema.update(type="array", items={"type": parameter.type[6:-1]})
        else:
            schema["type"] = parameter.type
        if parameter.options:
            schema["enum"] = list(parameter.options)
        properties[parameter.name] = schema
    return {"type": "object", "properties": properties,
            "required": [parameter.name for parameter in parameters if parameter.required]}


def request_for(call: NodeCall[ParameterExtractorConfig], query: str, instruction: str) -> ChatRequest:
    """The request: for a call of the extraction tool, else for a JSON answer."""
    config = call.config
    schema = parameters_schema(config.parameters)
    system = SYSTEM_PROMPT.format(instruction=INSTRUCTION.format(instruction=instruction) if instruction.strip()
                                  else "")
    tools = config.reasoning_mode == "function_call" and has_capability(call, config.model,
                                                                         Capability.FUNCTION_CALLING)
    options = request_options(config.model)
    if tools:
        messages = [Message(role="system", content=f"{system}\n{TOOL_PROMPT}"), Message(role="user", content=query)]
        tool = Tool(name=TOOL_NAME, description="Record the parameters extracted from the text", parameters=schema)
        return ChatRequest(messages=messages, tools=[tool], tool_choice="required", **options)
    prompt = JSON_PROMPT.format(schema=json.dumps(schema, ensure_ascii=False))
    messages = [Message(role="system", content=f"{system}\n{prompt}"), Message(role="user", content=query)]
    return ChatRequest(messages=messages, **options)


def _arguments(answer: ModelAnswer) -> dict[str, Any] | None:
    """The extracted values: the tool call's arguments, else the JSON object of the text."""
    calls = [arguments for name, arguments in answer.tool_calls if name == TOOL_NAME] or \
        [arguments for _name, arguments in answer.tool_calls]
    for arguments in calls:
        found = json_object(arguments)
        if found is not None:
            return found
    return json_object(answer.text)


def _number(value: Any) -> int | float | None:
    if value_matches(value, "number"):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return None
        if value_matches(number, "number"):
            return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    return None


def _scalar(value: Any, kind: str) -> tuple[bool, Any]:
    """(fits, the value converted to ``kind``)."""
    if kind == "number":
        number = _number(value)
        return number is not None, number
    if kind == "boolean":
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return True, value.strip().lower() == "true"
        return False, None
    return value_matches(value, kind), value


def typed(parameter: ExtractedParameter, value: Any) -> tuple[Any, str | None]:
    """The parameter's value converted to its type, and the problem when it does not fit (the
    value is then its type's empty value; an array keeps the items that fit)."""
    name, kind = parameter.name, parameter.type
    if kind.startswith("array["):
        if not isinstance(value, list):
            return [], f"parameter {name!r} must be an array"
        item_kind = kind[6:-1]
        items = [_scalar(item, item_kind) for item in value]
        kept = [item for fits, item in items if fits]
        problem = None if len(kept) == len(items) else f"parameter {name!r} has items that are not {item_kind}s"
        return kept, problem
    fits, converted = _scalar(value, kind)
    if not fits:
        return EMPTY[kind], f"parameter {name!r} must be a {kind}"
    if parameter.options and converted not in parameter.options:
        return "", f"parameter {name!r} must be one of {', '.join(repr(o) for o in parameter.options)}"
    return converted, None


def extracted(parameters: list[ExtractedParameter], found: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Each parameter's value, and what went wrong."""
    if found is None:
        return ({p.name: [] if p.type.startswith("array[") else EMPTY[p.type] for p in parameters},
                ["the model's answer holds no parameters (no function call, no JSON object)"])
    values: dict[str, Any] = {}
    problems: list[str] = []
    for parameter in parameters:
        value = found.get(parameter.name)
        if value is None:
            values[parameter.name] = [] if parameter.type.startswith("array[") else EMPTY[parameter.type]
            if parameter.required:
                problems.append(f"parameter {parameter.name!r} is required")
            continue
        values[parameter.name], problem = typed(parameter, value)
        if problem is not None:
            problems.append(problem)
    return values, problems


def execute(call: NodeCall[ParameterExtractorConfig], inputs: dict[str, Any]) -> NodeOutput:
    query: str = inputs["query"]
    if not query.strip():
        raise NodeFailure("parameter_extractor_query_empty",
                          "The query variable is empty: the extractor needs text to extract parameters from")
    answer = ask(call, call.config.model, request_for(call, query, inputs["instruction"]))
    values, problems = extracted(call.config.parameters, _arguments(answer))
    return NodeOutput({**values, "__is_success": 0 if problems else 1,
                       "__reason": "; ".join(problems) if problems else None, "__usage": answer.usage})


EXECUTOR = NodeExecutor(resolve, execute)
