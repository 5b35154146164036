"""tool: one call of a tool of the tenant's (docs/tools.md) through the tools' executor port
(:class:`shared.tools.contract.ToolExecutor`): an OpenAPI operation or an MCP tool of a tool
provider, a built-in (``current_time``, ``web_fetch``, ``knowledge_search``) or a published
workflow. Tenant URLs are reached through the safe fetch path and the MCP function, as for any
tool; the node's timeout bounds the call, as the tool's own timeout does.

Arguments are constants, selectors (a variable as it is; an absent one leaves the argument out)
or templates (text; where the tool's schema wants a number, a boolean, an object or an array and
the rendered text reads as one, that value). Outputs: ``text`` (the tool's answer), ``json``
(that answer parsed, when it is JSON: an object or an array; else None), ``status`` (``ok``), and
each declared field of a JSON object answer. A tool that does not answer ``ok`` — refused, timed
out, an HTTP error, an MCP error result, arguments that do not fit, a tool gone — fails the node
with the tool's error code (``tool_http_error``, ``http_request_refused``, ``tool_timeout``...;
``details.status`` the tool status), so the node's retry and error strategy apply."""

from __future__ import annotations

import json
from typing import Any

from shared.tools.contract import CallContext, ToolRef, ToolRefInvalid, ToolSelection
from shared.workflows.configs import MAX_TOOL_OUTPUT_CHARS, ToolConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput

# How much of a failed tool's answer the node's error message quotes.
_ERROR_QUOTE_CHARS = 2000


def resolve(call: NodeCall[ToolConfig]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for name, argument in call.config.arguments.items():
        if argument.type == "selector":
            value = call.pool.get_or_none(argument.value)
        elif argument.type == "template":
            value = call.pool.render(argument.value)
        else:
            value = argument.value
        if value is not None:
            arguments[name] = value
    return {"tool": call.config.tool, "arguments": arguments}


def _types(schema: Any) -> set[str]:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, str):
        return {kind}
    return {item for item in kind if isinstance(item, str)} if isinstance(kind, list) else set()


def typed(text: str, schema: Any) -> Any:
    """A template argument's text as the value its schema wants, when it reads as one (else the
    text, for the tool's validation to report)."""
    wanted = _types(schema)
    if not wanted or "string" in wanted:
        return text
    stripped = text.strip()
    if wanted & {"integer", "number", "boolean", "object", "array", "null"}:
        try:
            value = json.loads(stripped)
        except ValueError:
            return text
        matches = {"integer": (isinstance(value, int) and not isinstance(value, bool))
                   or (isinstance(value, float) and value.is_integer()),
                   "number": isinstance(value, int | float) and not isinstance(value, bool),
                   "boolean": isinstance(value, bool), "object": isinstance(value, dict),
                   "array": isinstance(value, list), "null": value is None}
        for kind in ("integer", "number", "boolean", "object", "array", "null"):
            if kind in wanted and matches[kind]:
                return int(value) if kind == "integer" else value
    return text


def _coerced(call: NodeCall[ToolConfig], ref: ToolRef, arguments: dict[str, Any]) -> dict[str, Any]:
    templated = [name for name, argument in call.config.arguments.items()
                 if argument.type == "template" and name in arguments]
    if not templated:
        return arguments
    tools = call.ports.tools
    assert tools is not None
    specs = tools.list(call.context.tenant_id, [ToolSelection(ref.source, (ref.name,))])
    spec = next((spec for spec in specs if spec.ref == ref), None)
    properties = spec.parameters.get("properties") if spec is not None else None
    if not isinstance(properties, dict):
        return arguments
    return {**arguments, **{name: typed(arguments[name], properties.get(name)) for name in templated}}


def execute(call: NodeCall[ToolConfig], inputs: dict[str, Any]) -> NodeOutput:
    config = call.config
    tools = call.ports.tools
    if tools is None:
        raise NodeFailure("tool_unavailable", "Tools cannot be called here (no tool executor); run the workflow "
                                              "through the workflow engine")
    try:
        ref = ToolRef.parse(config.tool)
    except ToolRefInvalid as exc:
        raise NodeFailure("tool_not_found", str(exc), details={"tool": config.tool}) from None
    arguments = _coerced(call, ref, dict(inputs["arguments"]))
    result = tools.call(call.context.tenant_id, ref, arguments, call.timeout_s,
                        context=CallContext(max_output_chars=MAX_TOOL_OUTPUT_CHARS,
                                            lineage=(*call.context.lineage, call.context.workflow_id)))
    if not result.ok:
        quoted = result.output[:_ERROR_QUOTE_CHARS]
        raise NodeFailure(result.error_code or f"tool_{result.status}",
                          f"The tool {ref} answered {result.status}: {quoted}",
                          details={"tool": str(ref), "status": result.status, "elapsed_ms": result.elapsed_ms,
                                   **result.details})
    try:
        parsed = json.loads(result.output)
    except ValueError:
        parsed = None
    parsed = parsed if isinstance(parsed, dict | list) else None
    outputs: dict[str, Any] = {"text": result.output, "json": parsed, "status": result.status}
    for field in config.outputs:
        outputs[field.variable] = parsed.get(field.variable) if isinstance(parsed, dict) else None
    return NodeOutput(outputs)


EXECUTOR = NodeExecutor(resolve, execute)
