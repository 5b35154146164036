"""Coze's OpenAPI over Stratus's agents, conversations, workflows and knowledge (docs/coze-api.md,
docs/adr/0043-coze-facade.md): what the official ``cozepy`` SDK calls with
``base_url=<stratus>/coze``. ``dialect`` is the wire (envelope, errors, logid, stream frames),
``wire`` the helpers every Coze route shares (envelope models, ids, times, pages)."""
