"""Agents: drafts, published versions, built-ins."""

from __future__ import annotations

from functions.catalog._common import KMS
from shared.catalog import DATABASE, REDIS, Function, Http, invoke

_A = "agents"
_AGENT = "/api/v1/agents/{agent_id}"


def _agent(name: str, module: str, method: str, path: str, permission: str, summary: str,
           **kwargs: object) -> Function:
    # Plain CRUD on PostgreSQL: publishing reads the model catalog but never calls a provider.
    return Function(name, f"functions.agents.{module}", _A,
                    Http(method, path, permission=permission, summary=summary, tag="agents"),
                    **{"access": (DATABASE, REDIS), **kwargs})  # type: ignore[arg-type]


FUNCTIONS: tuple[Function, ...] = (
    _agent("agents-create", "create_agent", "POST", "/api/v1/agents", "agent:write", "Create an agent (a draft)"),
    _agent("agents-list", "list_agents", "GET", "/api/v1/agents", "agent:read",
           "List the built-in agents and the tenant's own"),
    _agent("agents-get", "get_agent", "GET", _AGENT, "agent:read", "One agent (by id, or a built-in's slug)"),
    _agent("agents-update", "update_agent", "PATCH", _AGENT, "agent:write", "Change an agent's draft"),
    _agent("agents-delete", "delete_agent", "DELETE", _AGENT, "agent:write", "Delete an agent"),
    # A smart-reasoning agent's tools are checked against the tenant's: an MCP server's list read
    # through the MCP function (its token decrypted with KMS), cached in Redis.
    _agent("agents-publish", "publish_agent", "POST", _AGENT + "/publish", "agent:write",
           "Validate the draft and publish it as the next version", layers=("base", "aws", "llm", "tools"),
           access=(DATABASE, REDIS, KMS, invoke("tools-mcp")), timeout_s=28, memory_mb=512),
    _agent("agents-versions-list", "list_agent_versions", "GET", _AGENT + "/versions", "agent:read",
           "An agent's published versions, newest first"),
    _agent("agents-versions-get", "get_agent_version", "GET", _AGENT + "/versions/{number}", "agent:read",
           "One published version of an agent"),
    _agent("agents-copy", "copy_agent", "POST", _AGENT + "/copy", "agent:write",
           "Copy an agent (built-ins included) into a new draft of the tenant"),
    # Agent variables (docs/variables.md): values kept per end user, set by the apps that chat.
    _agent("agents-variables-get", "get_agent_variables", "GET", _AGENT + "/variables", "agent:run",
           "An end user's values of the agent's variables (unset ones: their defaults)"),
    _agent("agents-variables-set", "set_agent_variables", "PUT", _AGENT + "/variables", "agent:run",
           "Set an end user's values of the agent's variables (null: back to the default)"),
)

