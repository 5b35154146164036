"""File use cases: upload (checked: size, type, name), read the record, open the bytes, and
resolve a file id to the workflow engine's file reference. Every compatible API's upload
(Coze ``/v1/files/upload``, Dify ``/v1/files/upload``) goes through :meth:`FilesService.upload`."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.auth.principal import Principal
from shared.db.database import Database
from shared.files import repository as repo
from shared.files.api import FileOut
from shared.files.errors import FileEmpty, FileNotFound, FileTooLarge, FileTypeNotAllowed
from shared.files.storage import FileObjects, file_key
from shared.ids import new_id
from shared.observability import tracer

logger = logging.getLogger(__name__)

# The largest file the HTTP API takes: a Lambda request payload is at most 6 MB, and API
# Gateway sends a binary body base64-encoded (4/3 larger). Larger files: knowledge documents'
# presigned uploads.
MAX_FILE_BYTES = 4 * 1024 * 1024
# The route's body limit: the file and the form's framing.
MAX_UPLOAD_BODY_BYTES = MAX_FILE_BYTES + 64 * 1024
# What may be uploaded: documents, data, images, audio and video. Executables, archives and
# anything unnamed (application/octet-stream) are refused.
ALLOWED_TYPES = frozenset({
    "application/pdf", "application/json", "application/xml", "application/msword", "application/rtf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint", "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/epub+zip", "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff",
})
ALLOWED_FAMILIES = ("text/", "audio/", "video/")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_MAX_NAME = 255
_EXTRA_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".csv": "text/csv", ".yaml": "text/yaml",
                ".yml": "text/yaml", ".webp": "image/webp"}


def allowed(content_type: str) -> bool:
    return content_type in ALLOWED_TYPES or content_type.startswith(ALLOWED_FAMILIES)


def clean_name(filename: str) -> str:
    """The name without its path and without control or format characters; ``file`` if nothing is left."""
    base = re.split(r"[\\/]", filename)[-1]
    text = "".join(ch for ch in base if not unicodedata.category(ch).startswith("C")).strip()
    return text[:_MAX_NAME] or "file"


def media_type(declared: str | None, name: str) -> str:
    """The declared type (without parameters), unless it says nothing (empty, octet-stream):
    then the one the name's extension gives."""
    declared = (declared or "").split(";", 1)[0].strip().lower()
    if declared and declared != "application/octet-stream" and _MEDIA_TYPE.match(declared):
        return declared
    extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    guessed = (_EXTRA_TYPES.get(extension) or mimetypes.guess_type("f" + extension)[0]) if extension else None
    return guessed or declared or "application/octet-stream"


def file_out(row: dict[str, Any]) -> FileOut:
    return FileOut(id=row["id"], name=row["name"], content_type=row["content_type"], size=row["size"],
                   sha256=row["sha256"], created_at=row["created_at"])


@dataclass(frozen=True)
class OpenedFile:
    file: FileOut
    chunks: Iterator[bytes]


class FilesService:
    def __init__(self, db: Database, objects: Callable[[], FileObjects], *, max_bytes: int = MAX_FILE_BYTES) -> None:
        self._db = db
        self._objects = objects
        self._max_bytes = max_bytes

    @tracer.capture_method(capture_response=False)
    def upload(self, principal: Principal, filename: str, content_type: str | None, data: bytes) -> FileOut:
        """Store the bytes and record the file. Checked first, so a refused file leaves nothing:
        not empty, at most the limit, an allowed type (declared, else from the name)."""
        tenant_id = principal.tenant
        name = clean_name(filename)
        kind = media_type(content_type, name)
        if not data:
            raise FileEmpty(details={"fields": [{"field": "file", "type": "empty",
                                                 "message": "the file has no bytes"}]})
        if len(data) > self._max_bytes:
            raise FileTooLarge(f"The file is larger than the {self._max_bytes} bytes allowed",
                               details={"max_bytes": self._max_bytes, "size": len(data)})
        if not allowed(kind):
            raise FileTypeNotAllowed(
                f"Files of type {kind} cannot be uploaded: send documents (PDF, Word, Excel, PowerPoint, text, "
                "Markdown, CSV, JSON), images, audio or video, with a file name whose extension says the type "
                "or the part's Content-Type", details={"content_type": kind, "filename": name})
        file_id = new_id()
        key = file_key(tenant_id, file_id)
        # The object first: a row never names bytes that are not there. An object whose row
        # could not be written is removed again.
        self._objects().put(key, data, kind)
        try:
            with self._db.transaction(tenant_id) as conn:
                row = repo.insert_file(conn, file_id=file_id, tenant_id=tenant_id, name=name, content_type=kind,
                                       size=len(data), sha256=hashlib.sha256(data).hexdigest(), s3_key=key,
                                       created_by=principal.user_id, api_key_id=principal.token_id)
        except Exception:
            self._objects().delete(key)
            raise
        return file_out(row)

    def _row(self, tenant_id: uuid.UUID, file_id: uuid.UUID) -> dict[str, Any]:
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_file(conn, tenant_id, file_id)
        if row is None:
            raise FileNotFound(details={"file_id": str(file_id)})
        return row

    @tracer.capture_method(capture_response=False)
    def get(self, principal: Principal, file_id: uuid.UUID) -> FileOut:
        return file_out(self._row(principal.tenant, file_id))

    @tracer.capture_method(capture_response=False)
    def open(self, principal: Principal, file_id: uuid.UUID) -> OpenedFile:
        """The file and its bytes, in chunks."""
        row = self._row(principal.tenant, file_id)
        try:
            chunks = self._objects().open(row["s3_key"])
        except FileNotFoundError:
            logger.error("a file's object is missing", extra={"file_id": str(file_id)})
            raise FileNotFound(details={"file_id": str(file_id)}) from None
        return OpenedFile(file_out(row), chunks)

    def reference(self, tenant_id: uuid.UUID, file_id: uuid.UUID) -> dict[str, Any]:
        """The workflow engine's file reference of the tenant's file (:mod:`shared.files.contract`)."""
        row = self._row(tenant_id, file_id)
        return {"file_id": str(row["id"]), "s3_key": row["s3_key"], "filename": row["name"],
                "mime_type": row["content_type"], "size": row["size"]}
