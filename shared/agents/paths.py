"""Path parameters of the agent API: an agent is named by its id or, for a built-in, its slug
(``builtin-quick-answer``); a malformed reference answers like a missing agent (404)."""

from __future__ import annotations

import re
import uuid

from shared.agents.errors import AgentNotFound, AgentVersionNotFound
from shared.ids import parse_id

AgentRef = uuid.UUID | str
_SLUG = re.compile(r"^builtin-[a-z0-9-]{1,60}$")


def is_builtin_slug(value: str) -> bool:
    return bool(_SLUG.fullmatch(value or ""))


def agent_ref(value: str) -> AgentRef:
    parsed = parse_id(value)
    if parsed is not None:
        return parsed
    if is_builtin_slug(value):
        return value
    raise AgentNotFound(details={"agent_id": value})


def version_number(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", value or "") or not 1 <= int(value) <= 2_147_483_647:
        raise AgentVersionNotFound(details={"number": value})
    return int(value)
