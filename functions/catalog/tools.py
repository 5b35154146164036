"""Tools: tenants' OpenAPI tool sets and MCP servers, the built-ins, and the calls to them
(docs/tools.md, docs/adr/0039-tool-providers.md)."""

from __future__ import annotations

from functions.catalog._common import EMBED_ACCESS, EMBED_LAYERS, KMS
from shared.catalog import DATABASE, REDIS, Function, Http, Invoked, bucket, invoke, state_machine

_T = "tools"
_MCP = "tools-mcp"
_FETCH = "workflow-fetch"
_PROVIDER = "/api/v1/tools/{tool_id}"
# jsonschema (argument schemas) and the mcp SDK; boto3 for KMS (the providers' secrets).
_LAYERS = ("base", "aws", "llm", "tools")
# Reading a provider's tools: an MCP server's list through the MCP function (its bearer token
# decrypted first), cached in Redis.
_READ = (DATABASE, REDIS, KMS, invoke(_MCP))


def _api(name: str, module: str, method: str, path: str, permission: str, summary: str,
         access: tuple[object, ...] = (DATABASE, REDIS, KMS), **kwargs: object) -> Function:
    return Function(name, f"functions.tools.{module}", _T,
                    Http(method, path, permission=permission, summary=summary, tag="tools"),
                    layers=_LAYERS, access=access, **kwargs)  # type: ignore[arg-type]


FUNCTIONS: tuple[Function, ...] = (
    _api("tools-create", "create_tool_provider", "POST", "/api/v1/tools", "tool:write",
         "Add a tool provider: an OpenAPI tool set or a remote MCP server"),
    _api("tools-list", "list_tool_providers", "GET", "/api/v1/tools", "tool:read", "List the tenant's tool providers",
         access=(DATABASE, REDIS)),
    _api("tools-get", "get_tool_provider", "GET", _PROVIDER, "tool:read",
         "One tool provider with its tools and their argument schemas (`builtin`: the built-in tools and the "
         "tenant's published workflows)", access=_READ, timeout_s=28, memory_mb=512),
    _api("tools-update", "update_tool_provider", "PATCH", _PROVIDER, "tool:write", "Change a tool provider"),
    _api("tools-delete", "delete_tool_provider", "DELETE", _PROVIDER, "tool:write", "Delete a tool provider",
         access=(DATABASE, REDIS)),
    _api("tools-refresh", "refresh_tool_provider", "POST", _PROVIDER + "/refresh", "tool:write",
         "List an MCP server's tools again (the cached list is replaced)", access=_READ, timeout_s=28,
         memory_mb=512),
    # A test call reaches whatever a tool reaches: tenant URLs through the fetch function, MCP
    # servers through the MCP function, the retrieval service (embedding the query), and the
    # workflow engine (a workflow run and its outputs).
    Function("tools-test", "functions.tools.call_tool", _T,
             Http("POST", _PROVIDER + "/test", permission="tool:write",
                  summary="Call one tool with sample arguments and show the result", tag="tools"),
             memory_mb=1024, timeout_s=28, layers=(*EMBED_LAYERS, "tools"),
             access=(*EMBED_ACCESS, invoke(_FETCH), invoke(_MCP), state_machine("workflow-run", "start"),
                     bucket("payloads", "read"))),
    # MCP servers' requests (docs/tools.md): outside the VPC, with no access at all (its role only
    # logs) and no secrets beyond the bearer token a request carries, as the fetch function.
    # Its timeout is shared.tools.wiring.MCP_FUNCTION_TIMEOUT_S (the callers wait that long).
    # Deployed in the workflows stack, beside the fetch function: workflow tool nodes call it and
    # the tools stack already depends on the workflows stack (a stack per domain would cycle).
    Function(_MCP, "functions.tools.call_mcp", "workflows", Invoked(), in_vpc=False,
             layers=("base", "llm", "tools"),
             memory_mb=512, timeout_s=330,
             description="Lists or calls the tools of a tenant's MCP server, outside the VPC, through the egress "
                         "policy"),
)
