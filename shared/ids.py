"""Time-ordered identifiers generated in the application (UUIDv7)."""

from __future__ import annotations

import uuid

from uuid6 import uuid7


def new_id() -> uuid.UUID:
    return uuid.UUID(int=uuid7().int)


def parse_id(value: str) -> uuid.UUID | None:
    """Parse an id from a path; a malformed id is simply not found, never a 500."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def path_id(value: str, not_found: Exception) -> uuid.UUID:
    """The id in a path, or ``not_found`` raised: a malformed id answers like a missing one."""
    parsed = parse_id(value)
    if parsed is None:
        raise not_found
    return parsed
