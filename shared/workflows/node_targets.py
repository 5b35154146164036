"""What publishing (and running a draft) checks of a document's tool and agent nodes against
the tenant (docs/workflows.md §13), each problem located on the node:

- a tool node's tool exists in the tenant (``tool_not_found``: a provider of another tenant, or
  deleted, is not found either), the arguments it gives are ones the tool takes
  (``unknown_argument``, when its schema takes no others), its constants fit their schemas
  (``invalid_argument``), and every argument the tool requires is bound (``missing_argument``);
- an agent node's agent exists (``agent_not_found``) and is published (``agent_not_published``),
  in a mode that answers outside a conversation (``agent_mode_unsupported``: a chatflow agent).

The tools are read through the tools' catalog port, the agents through the agents' resolver."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.errors import StratusError
from shared.workflows.api import WorkflowProblem
from shared.workflows.configs import AgentNodeConfig, ToolConfig, parse_config
from shared.workflows.definition import WorkflowDocument

if TYPE_CHECKING:
    from shared.agents.contract import AgentResolver
    from shared.tools.contract import ToolCatalog, ToolSpec

# Agent modes whose answer needs a conversation of their own (shared/chat/headless.py).
CONVERSATION_MODES = frozenset({"chatflow"})


def _nodes(document: WorkflowDocument, node_type: str) -> Iterator[tuple[str, Any]]:
    for node in document.nodes:
        if node.type == node_type:
            try:
                yield node.id, parse_config(node.type, node.config)
            except ValidationError:
                continue  # validation's problem


def _problem(node_id: str, field: str, code: str, message: str) -> WorkflowProblem:
    return WorkflowProblem(node_id=node_id, field=field, code=code, message=message)


def tool_node_problems(catalog: ToolCatalog, tenant_id: uuid.UUID, document: WorkflowDocument) -> list[WorkflowProblem]:
    from shared.tools.contract import ToolRef, ToolRefInvalid, ToolSelection

    nodes: list[tuple[str, ToolConfig, ToolRef]] = []
    wanted: dict[str, set[str]] = {}
    for node_id, config in _nodes(document, "tool"):
        assert isinstance(config, ToolConfig)
        try:
            ref = ToolRef.parse(config.tool)
        except ToolRefInvalid:
            continue  # validation's problem (invalid_tool)
        nodes.append((node_id, config, ref))
        wanted.setdefault(ref.source, set()).add(ref.name)
    if not nodes:
        return []
    specs = {spec.ref: spec for spec in catalog.list(tenant_id, [ToolSelection(source, tuple(sorted(names)))
                                                                   for source, names in wanted.items()])}
    problems: list[WorkflowProblem] = []
    for node_id, config, ref in nodes:
        spec = specs.get(ref)
        if spec is None:
            problems.append(_problem(node_id, "config.tool", "tool_not_found", _not_found(ref)))
            continue
        problems += _argument_problems(node_id, config, spec)
    return problems


def _not_found(ref: Any) -> str:
    if ref.source == "builtin":
        return f"there is no built-in tool {ref.name!r} (the built-ins: knowledge_search, web_fetch, current_time)"
    if ref.source == "workflow":
        return f"no published workflow {ref.name} in this tenant: publish it first (a workflow tool runs it)"
    return (f"no tool {ref.name!r} in tool provider {ref.source} of this tenant (GET /api/v1/tools/{ref.source} "
            "lists its tools; an MCP server that cannot be reached lists none)")


def _argument_problems(node_id: str, config: ToolConfig, spec: ToolSpec) -> list[WorkflowProblem]:
    from shared.tools.runtime import argument_problems

    schema = spec.parameters if isinstance(spec.parameters, dict) else {}
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    assert isinstance(properties, dict)
    closed = schema.get("additionalProperties") is False
    problems: list[WorkflowProblem] = []
    for name, argument in config.arguments.items():
        if name not in properties:
            if closed:
                problems.append(_problem(node_id, f"config.arguments.{name}", "unknown_argument",
                                         f"{spec.name} takes no argument {name!r}; it takes "
                                         f"{', '.join(properties) or 'none'}"))
            continue
        if argument.type == "constant" and isinstance(properties[name], dict):
            found = argument_problems({"type": "object", "properties": {name: properties[name]}},
                                      {name: argument.value})
            if found:
                problems.append(_problem(node_id, f"config.arguments.{name}.value", "invalid_argument",
                                         f"the value does not fit {spec.name}'s schema: "
                                         + "; ".join(p.split(":", 1)[1].strip() for p in found)))
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    assert isinstance(required, list)
    for name in required:
        if name not in config.arguments:
            problems.append(_problem(node_id, "config.arguments", "missing_argument",
                                     f"{spec.name} requires the argument {name!r}: bind it to a constant, a variable "
                                     "or a template"))
    return problems


def agent_node_problems(agents: AgentResolver, tenant_id: uuid.UUID,
                        document: WorkflowDocument) -> list[WorkflowProblem]:
    from shared.agents.contract import agent_ref

    problems: list[WorkflowProblem] = []
    for node_id, config in _nodes(document, "agent"):
        assert isinstance(config, AgentNodeConfig)
        try:
            chat_agent = agents.resolve_for_chat(tenant_id, agent_ref(config.agent_id))
        except StratusError as exc:
            if exc.code not in ("agent_not_found", "agent_not_published"):
                raise
            message = (f"agent {config.agent_id} has no published version: publish it first (an agent node runs "
                       "the latest published version)" if exc.code == "agent_not_published"
                       else f"there is no agent {config.agent_id} in this tenant")
            problems.append(_problem(node_id, "config.agent_id", exc.code, message))
            continue
        if chat_agent.config.mode in CONVERSATION_MODES:
            problems.append(_problem(node_id, "config.agent_id", "agent_mode_unsupported",
                                     f"agent {config.agent_id} is a {chat_agent.config.mode} agent, which answers in a "
                                     "conversation of its own: call its chatflow with a sub_workflow node instead"))
    return problems
