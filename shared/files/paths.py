"""File ids in paths and queries: a malformed id answers like a missing file (404)."""

import uuid

from shared.files.errors import FileNotFound
from shared.ids import parse_id


def file_id(value: str) -> uuid.UUID:
    parsed = parse_id(value)
    if parsed is None:
        raise FileNotFound(details={"file_id": value})
    return parsed
