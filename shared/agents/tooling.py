"""A smart-reasoning agent's tools: its configuration as tool selections (the tools domain's
:class:`~shared.tools.contract.ToolSelection`), the names its model calls them by, and the
checks publishing makes (each tool exists in the tenant; a forced ``tool_choice`` names one)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from shared.tools.contract import BUILTIN, WORKFLOW, ToolSelection, ToolSpec

if TYPE_CHECKING:
    from shared.agents.config import AgentConfig
    from shared.tools.contract import ToolCatalog

KNOWLEDGE_SEARCH = "knowledge_search"
CHOICES = ("auto", "none", "required")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def selections(config: AgentConfig) -> list[ToolSelection]:
    """The tools the agent may call; an agent with knowledge bases always searches them."""
    chosen = [ToolSelection(use.tool_id, tuple(use.operations) if use.operations is not None else None)
              for use in config.tools]
    if config.knowledge.knowledge_base_ids and not any(
            s.source == BUILTIN and (s.names is None or KNOWLEDGE_SEARCH in s.names) for s in chosen):
        chosen.append(ToolSelection(BUILTIN, (KNOWLEDGE_SEARCH,)))
    return chosen


def model_names(specs: Sequence[ToolSpec], reserved: Collection[str] = ()) -> dict[str, ToolSpec]:
    """Each tool under a name a model can call (``[a-zA-Z0-9_-]{1,64}``), unique in the turn:
    two providers' ``search`` become ``search`` and ``search_2``. The same tool selected twice
    is offered once. ``reserved``: names taken already (the agent's client tools)."""
    named: dict[str, ToolSpec] = {}
    seen: set[str] = set()
    for spec in specs:
        if str(spec.ref) in seen:
            continue
        seen.add(str(spec.ref))
        base = _UNSAFE.sub("_", spec.name)[:64] or "tool"
        name, n = base, 1
        while name in named or name in reserved:
            n += 1
            suffix = f"_{n}"
            name = base[:64 - len(suffix)] + suffix
        named[name] = spec
    return named


def _field(field: str, message: str, kind: str) -> dict[str, str]:
    return {"field": field, "type": kind, "message": message}


def tool_problems(catalog: ToolCatalog, tenant_id: uuid.UUID, config: AgentConfig) -> list[dict[str, str]]:
    """What publishing refuses about the agent's tools, each naming its field."""
    problems: list[dict[str, str]] = []
    for i, use in enumerate(config.tools):
        field = f"config.tools[{i}]"
        if use.tool_id == BUILTIN:
            continue  # the configuration only takes the built-ins' names
        if use.tool_id == WORKFLOW:
            for j, name in enumerate(use.operations or ()):
                try:
                    uuid.UUID(name)
                except ValueError:
                    problems.append(_field(f"{field}.operations[{j}]", f"{name!r} is not a workflow id",
                                           "uuid_parsing"))
                    continue
                if not catalog.list(tenant_id, [ToolSelection(WORKFLOW, (name,))]):
                    problems.append(_field(f"{field}.operations[{j}]", f"Workflow {name} does not exist or has no "
                                                                       "published version: publish it first",
                                           "workflow_not_found"))
            continue
        everything = catalog.list(tenant_id, [ToolSelection(use.tool_id)])
        if not everything:
            problems.append(_field(f"{field}.tool_id", f"Tool provider {use.tool_id} does not exist in this tenant "
                                                       "(or lists no tools: an MCP server that cannot be reached)",
                                   "tool_provider_not_found"))
            continue
        names = {spec.name for spec in everything} | {spec.ref.name for spec in everything}
        for j, name in enumerate(use.operations or ()):
            if name not in names:
                problems.append(_field(f"{field}.operations[{j}]",
                                       f"Tool provider {everything[0].provider_name!r} has no tool {name!r} (it has: "
                                       + ", ".join(sorted(s.name for s in everything)[:20]) + ")", "tool_not_found"))
    if problems or (not config.client_tools and config.tool_choice in CHOICES):
        return problems
    offered = model_names(catalog.list(tenant_id, selections(config))) if config.tools or \
        config.knowledge.knowledge_base_ids else {}
    for i, tool in enumerate(config.client_tools):
        if tool.name in offered:
            problems.append(_field(f"config.client_tools[{i}].name", f"The client tool {tool.name!r} has the name "
                                   "of one of the agent's tools: rename it", "duplicate"))
    client = {tool.name for tool in config.client_tools}
    if config.tool_choice not in (*CHOICES, *offered, *client) and not problems:
            problems.append(_field("config.tool_choice", f"tool_choice {config.tool_choice!r} is none of the agent's "
                                   "tools (" + (", ".join(sorted(offered)) or "it has none")
                                   + "): give auto, none, required or one of their names", "tool_not_found"))
    return problems
