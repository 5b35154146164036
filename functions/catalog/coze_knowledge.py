"""Coze's variables, files and datasets over Stratus's agent variables, files and knowledge bases
(docs/coze-api.md; the facade itself is declared in ``functions/catalog/coze.py``)."""

from __future__ import annotations

from functions.catalog.coze import DIALECT, TAG, coze_http
from functions.catalog.files import MAX_UPLOAD_BODY_BYTES
from shared.catalog import DATABASE, REDIS, Function, Http, bucket

FUNCTIONS: tuple[Function, ...] = (
    coze_http("coze-variables-get", "get_variables", "GET", "/coze/v1/variables",
              "Coze: an end user's (connector_uid) values of a bot's variables", domain="agents"),
    coze_http("coze-variables-set", "set_variables", "PUT", "/coze/v1/variables",
              "Coze: set an end user's (connector_uid) values of a bot's variables", domain="agents"),
    Function("coze-files-upload", "functions.coze.upload_file", "files",
             Http("POST", "/coze/v1/files/upload", permission="file:write", tag=TAG, dialect=DIALECT,
                  body="multipart", max_body_bytes=MAX_UPLOAD_BODY_BYTES,
                  summary="Coze: upload a file (multipart/form-data, part \"file\"; at most 4 MiB)"),
             layers=("base", "aws"), access=(DATABASE, REDIS, bucket("uploads", "write", "delete"))),
    coze_http("coze-files-retrieve", "retrieve_file", "GET", "/coze/v1/files/retrieve",
              "Coze: an uploaded file's name, size and upload time", permission="file:read", domain="files"),
)
