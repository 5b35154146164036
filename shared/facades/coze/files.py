"""Coze's files over Stratus's (docs/files.md): ``POST /v1/files/upload`` (multipart, part
``file``) and ``GET /v1/files/retrieve?file_id=`` as ``cozepy.files`` sends them; the answer is
Coze's ``File`` (``id``, ``bytes``, ``created_at`` in Unix seconds, ``file_name``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from shared.facades.coze import wire

if TYPE_CHECKING:
    from shared.auth.principal import Principal
    from shared.files.api import FileOut


class CozeFile(BaseModel):
    """``cozepy.files.File``."""

    id: str
    bytes: int = Field(description="Size in bytes")
    created_at: int = Field(description="Unix seconds")
    file_name: str


def coze_file(file: FileOut) -> CozeFile:
    return CozeFile(id=str(file.id), bytes=file.size, created_at=wire.timestamp(file.created_at), file_name=file.name)


def upload(principal: Principal, filename: str | None, content_type: str | None, data: bytes) -> CozeFile:
    from shared.files.wiring import files_service

    return coze_file(files_service().upload(principal, filename or "", content_type, data))


def retrieve(principal: Principal, file_id: str) -> CozeFile:
    from shared.files.paths import file_id as parse_file
    from shared.files.wiring import files_service

    return coze_file(files_service().get(principal, parse_file(file_id)))
