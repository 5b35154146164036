"""What the files domain offers the others: a file id resolved to the file reference the
workflow engine reads (``{"s3_key", "filename", "mime_type"}``, docs/workflows.md), and the
value forms that name a file by id in run inputs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Protocol


class FileReferences(Protocol):
    def reference(self, tenant_id: uuid.UUID, file_id: uuid.UUID) -> dict[str, Any]:
        """``{"file_id", "s3_key", "filename", "mime_type", "size"}`` of the tenant's file;
        :class:`~shared.files.errors.FileNotFound` for any other id."""
        ...


def named_file_id(value: Any) -> str | None:
    """The file id a run input names, in the forms clients send: ``{"file_id": …}`` (Stratus,
    Coze), ``{"upload_file_id": …, "transfer_method": "local_file"}`` (Dify), or the JSON text
    of either (Coze sends workflow parameters as strings). None: the value names no file."""
    if isinstance(value, str) and value.startswith("{") and len(value) <= 1000:
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, Mapping):
        return None
    for key in ("file_id", "upload_file_id"):
        candidate = value.get(key)
        if isinstance(candidate, str) and candidate and not any(
                value.get(source) is not None for source in ("url", "s3_key", "content_base64")):
            return candidate
    return None
