"""Path parameters of the tools API: a provider is named by its id, or ``builtin`` for the
built-in tools; a malformed reference answers like a missing provider (404)."""

from __future__ import annotations

import uuid

from shared.ids import parse_id
from shared.tools.contract import BUILTIN
from shared.tools.errors import ToolProviderNotFound

ProviderRef = uuid.UUID | str


def provider_ref(value: str) -> ProviderRef:
    if value == BUILTIN:
        return BUILTIN
    parsed = parse_id(value)
    if parsed is None:
        raise ToolProviderNotFound(details={"tool_id": value})
    return parsed
