"""The MCP function: one list or call of a tenant's MCP server, made outside the VPC through
the egress policy, answered as an MCP answer (the tools or the result, or the error that
stopped it). Invoked directly by the tool functions (shared.tools.mcp.LambdaMcpClient)."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.tools.mcp import answer
from shared.tools.wiring import sdk_mcp_client


def _call(event: Any, context: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {"ok": False, "error": {"code": "mcp_failed", "message": "the MCP function was sent an invalid "
                                                                        "request: a platform fault"}}
    return answer(sdk_mcp_client(), event)


handler = powertools_handler(_call)
