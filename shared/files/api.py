"""File API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class FileOut(BaseModel):
    id: uuid.UUID
    name: str = Field(description="The file name as uploaded (its path parts removed)")
    content_type: str = Field(description="The media type: the part's own, else guessed from the name")
    size: int = Field(description="Bytes")
    sha256: str = Field(description="SHA-256 of the bytes, hex")
    created_at: datetime


class UploadFileForm(BaseModel):
    """multipart/form-data with the file in a part named ``file`` (its ``filename`` and
    ``Content-Type`` are kept)."""

    file: bytes = Field(json_schema_extra={"format": "binary"})
