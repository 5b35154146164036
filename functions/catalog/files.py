"""Files: uploaded once (multipart), named by id afterwards (workflow inputs, compatible APIs)."""

from __future__ import annotations

from shared.catalog import DATABASE, REDIS, Function, Http, bucket

_F = "files"
# The route's body limit: shared.files.service.MAX_UPLOAD_BODY_BYTES (a literal here: the
# catalog imports nothing of the domains).
MAX_UPLOAD_BODY_BYTES = 4 * 1024 * 1024 + 64 * 1024

FUNCTIONS: tuple[Function, ...] = (
    Function("files-upload", "functions.files.upload_file", _F,
             Http("POST", "/api/v1/files", permission="file:write", tag="files", body="multipart",
                  max_body_bytes=MAX_UPLOAD_BODY_BYTES,
                  summary="Upload a file (multipart/form-data, part \"file\"; at most 4 MiB): documents, images, "
                          "audio, video",
                  too_large_hint="files over 4 MiB go to a knowledge base as documents (presigned upload)"),
             layers=("base", "aws"), access=(DATABASE, REDIS, bucket("uploads", "write", "delete", prefix="tenants/"))),
    Function("files-get", "functions.files.get_file", _F,
             Http("GET", "/api/v1/files/{file_id}", permission="file:read", tag="files",
                  summary="One uploaded file's name, type, size and checksum"),
             access=(DATABASE, REDIS)),
)
