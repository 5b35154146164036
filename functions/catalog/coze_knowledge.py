"""Coze's variables, files and datasets over Stratus's agent variables, files and knowledge bases
(docs/coze-api.md; the facade itself is declared in ``functions/catalog/coze.py``)."""

from __future__ import annotations

from functions.catalog.coze import DIALECT, TAG, coze_http
from functions.catalog.files import MAX_UPLOAD_BODY_BYTES
from shared.catalog import DATABASE, OPENSEARCH, REDIS, Access, Function, Http, bucket, state_machine

_UPLOADS = bucket("uploads", "read", "write", "delete", prefix="tenants/")
_SEARCH = ("base", "aws", "search")
_DOCUMENT = "/coze/open_api/knowledge/document"
# Coze sends a document's bytes base64 in the JSON body: up to ~3.7 MB of file within a Lambda
# request; larger files go through /coze/v1/files/upload and source_file_id.
MAX_DOCUMENT_BODY_BYTES = 5_000_000


def _dataset(name: str, module: str, method: str, path: str, permission: str, summary: str, *,
             layers: tuple[str, ...] = _SEARCH, access: tuple[Access, ...] = (DATABASE, REDIS, OPENSEARCH),
             max_body_bytes: int | None = None, timeout_s: int = 10) -> Function:
    """A Coze knowledge route: the knowledge domain's layers and access, Coze's dialect."""
    return Function(name, f"functions.coze.{module}", "knowledge",
                    Http(method, path, permission=permission, tag=TAG, dialect=DIALECT, summary=summary,
                         max_body_bytes=max_body_bytes),
                    layers=layers, access=access, timeout_s=timeout_s)


FUNCTIONS: tuple[Function, ...] = (
    coze_http("coze-variables-get", "get_variables", "GET", "/coze/v1/variables",
              "Coze: an end user's (connector_uid) values of a bot's variables", domain="agents"),
    coze_http("coze-variables-set", "set_variables", "PUT", "/coze/v1/variables",
              "Coze: set an end user's (connector_uid) values of a bot's variables", domain="agents"),
    Function("coze-files-upload", "functions.coze.upload_file", "files",
             Http("POST", "/coze/v1/files/upload", permission="file:write", tag=TAG, dialect=DIALECT,
                  body="multipart", max_body_bytes=MAX_UPLOAD_BODY_BYTES,
                  summary="Coze: upload a file (multipart/form-data, part \"file\"; at most 4 MiB)"),
             layers=("base", "aws"), access=(DATABASE, REDIS, bucket("uploads", "write", "delete", prefix="tenants/"))),
    coze_http("coze-files-retrieve", "retrieve_file", "GET", "/coze/v1/files/retrieve",
              "Coze: an uploaded file's name, size and upload time", permission="file:read", domain="files"),
    # Datasets: knowledge bases ------------------------------------------------------------------
    _dataset("coze-datasets-create", "create_dataset", "POST", "/coze/v1/datasets", "knowledge:write",
             "Coze: create a dataset (a knowledge base; text datasets only)"),
    _dataset("coze-datasets-list", "list_datasets", "GET", "/coze/v1/datasets", "knowledge:read",
             "Coze: the tenant's datasets (knowledge bases), by page", layers=("base",), access=(DATABASE, REDIS)),
    _dataset("coze-datasets-update", "update_dataset", "PUT", "/coze/v1/datasets/{dataset_id}", "knowledge:write",
             "Coze: rename a dataset and replace its description", layers=("base",), access=(DATABASE, REDIS)),
    _dataset("coze-datasets-delete", "delete_dataset", "DELETE", "/coze/v1/datasets/{dataset_id}",
             "knowledge:write", "Coze: delete a dataset with its documents (asynchronous)", layers=("base", "aws"),
             access=(DATABASE, REDIS, state_machine("knowledge-base-delete", "start"))),
    _dataset("coze-datasets-process", "dataset_process", "POST", "/coze/v1/datasets/{dataset_id}/process",
             "knowledge:read", "Coze: the indexing progress of some of a dataset's documents", layers=("base",),
             access=(DATABASE, REDIS)),
    _dataset("coze-documents-create", "create_documents", "POST", _DOCUMENT + "/create", "knowledge:write",
             "Coze: add documents to a dataset (base64 files or uploaded file ids; indexed asynchronously)",
             layers=("base", "aws"), access=(DATABASE, REDIS, _UPLOADS), max_body_bytes=MAX_DOCUMENT_BODY_BYTES,
             timeout_s=28),
    _dataset("coze-documents-list", "list_documents", "POST", _DOCUMENT + "/list", "knowledge:read",
             "Coze: a dataset's documents, by page", layers=("base",), access=(DATABASE, REDIS)),
    _dataset("coze-documents-update", "update_document", "POST", _DOCUMENT + "/update", "knowledge:write",
             "Coze: rename a document"),
    _dataset("coze-documents-delete", "delete_documents", "POST", _DOCUMENT + "/delete", "knowledge:write",
             "Coze: delete documents with their segments, vectors and files",
             access=(DATABASE, REDIS, OPENSEARCH, _UPLOADS)),
)
