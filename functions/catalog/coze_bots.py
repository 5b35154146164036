"""Coze's bots over Stratus's agents (docs/coze-api.md "Bots", docs/adr/0050-coze-bots.md; the
facade itself is declared in ``functions/catalog/coze.py``). Agent permissions, as the
``/api/v1/agents`` routes take them: ``agent:write`` to change, ``agent:read`` to read."""

from __future__ import annotations

from dataclasses import replace

from functions.catalog._common import KMS
from functions.catalog.coze import coze_http
from shared.catalog import DATABASE, REDIS, Function, invoke

FUNCTIONS: tuple[Function, ...] = (
    coze_http("coze-bots-create", "bot_create", "POST", "/coze/v1/bot/create",
              "Coze: create a bot (an agent's draft)", permission="agent:write", domain="agents"),
    coze_http("coze-bots-update", "bot_update", "POST", "/coze/v1/bot/update",
              "Coze: change a bot's draft (absent fields stay as they are)", permission="agent:write",
              domain="agents"),
    # Publishing checks a smart-reasoning agent's tools as agents-publish does (an MCP server's
    # list read through the MCP function, its token decrypted with KMS).
    replace(coze_http("coze-bots-publish", "bot_publish", "POST", "/coze/v1/bot/publish",
                      "Coze: publish a bot's draft as its next version", permission="agent:write", domain="agents"),
            layers=("base", "aws", "llm", "tools"), access=(DATABASE, REDIS, KMS, invoke("tools-mcp")),
            timeout_s=28, memory_mb=512),
    coze_http("coze-bots-unpublish", "bot_unpublish", "POST", "/coze/v1/bots/{bot_id}/unpublish",
              "Coze: unpublish a bot (refused: a published agent answers until it is deleted)",
              permission="agent:write", domain="agents"),
    coze_http("coze-bots-retrieve", "bot_retrieve", "GET", "/coze/v1/bots/{bot_id}",
              "Coze: a bot's published version, or its draft (is_published=false)", permission="agent:read",
              domain="agents"),
    coze_http("coze-bots-online-info", "bot_online_info", "GET", "/coze/v1/bot/get_online_info",
              "Coze: a bot's published version (the older retrieve)", permission="agent:read", domain="agents"),
    coze_http("coze-bots-list", "bots_list", "GET", "/coze/v1/bots",
              "Coze: the space's bots by publish status, most recently changed first", permission="agent:read",
              domain="agents"),
    coze_http("coze-bots-published-list", "published_bots_list", "GET", "/coze/v1/space/published_bots_list",
              "Coze: the space's published bots (the older list)", permission="agent:read", domain="agents"),
)
