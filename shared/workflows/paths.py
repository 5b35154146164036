"""Path parameters of the workflow API: a malformed id or version number answers like a
missing one (404), never a 500 or a 422."""

from __future__ import annotations

import re
import uuid

from shared.ids import parse_id
from shared.workflows.errors import WorkflowNotFound, WorkflowVersionNotFound


def workflow_id(value: str) -> uuid.UUID:
    parsed = parse_id(value)
    if parsed is None:
        raise WorkflowNotFound(details={"workflow_id": value})
    return parsed


def version_number(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", value or "") or not 1 <= int(value) <= 2_147_483_647:
        raise WorkflowVersionNotFound(details={"number": value})
    return int(value)


def run_id(value: str) -> uuid.UUID:
    from shared.workflows.errors import WorkflowRunNotFound

    parsed = parse_id(value)
    if parsed is None:
        raise WorkflowRunNotFound(details={"run_id": value})
    return parsed
