"""Knowledge bases: CRUD, documents, segments, retrieval and S3-triggered ingestion."""

from __future__ import annotations

from functions.catalog._common import EMBED_ACCESS, EMBED_LAYERS
from shared.catalog import (
    DATABASE,
    OPENSEARCH,
    REDIS,
    Access,
    Function,
    Http,
    Queue,
    QueueSpec,
    S3Notification,
    Schedule,
    StateMachineSpec,
    StepFunctionsTask,
    bucket,
    queue,
    state_machine,
)

_K = "knowledge"
_KB = "/api/v1/knowledge-bases/{kb_id}"
_DOC = _KB + "/documents/{document_id}"
# The uploads bucket, per function: only the actions each one performs, and only on tenants'
# objects (tenants/<tenant id>/..., shared.knowledge.storage): never the whole bucket.
_UPLOADS_PREFIX = "tenants/"
_UPLOADS_WRITE = bucket("uploads", "write", prefix=_UPLOADS_PREFIX)  # presigned forms, inline text
_UPLOADS_READ = bucket("uploads", "read", prefix=_UPLOADS_PREFIX)  # download, exists
_UPLOADS_DELETE = bucket("uploads", "delete", prefix=_UPLOADS_PREFIX)  # one document's file
_UPLOADS_PURGE = bucket("uploads", "read", "delete", prefix=_UPLOADS_PREFIX)  # list, then delete a prefix


def _kb(name: str, module: str, method: str, path: str, permission: str, summary: str, *,
        tag: str = "knowledge-bases", layers: tuple[str, ...] = ("base", "aws", "search"),
        access: tuple[Access, ...] = (DATABASE, REDIS, OPENSEARCH), too_large_hint: str = "",
        **kwargs: object) -> Function:
    return Function(name, f"functions.knowledge.{module}", _K,
                    Http(method, path, permission=permission, summary=summary, tag=tag,
                         too_large_hint=too_large_hint),
                    layers=layers, access=access, **kwargs)  # type: ignore[arg-type]


FUNCTIONS: tuple[Function, ...] = (
    _kb("knowledge-bases-create", "create_knowledge_base", "POST", "/api/v1/knowledge-bases", "knowledge:write",
        "Create a knowledge base"),
    _kb("knowledge-bases-list", "list_knowledge_bases", "GET", "/api/v1/knowledge-bases", "knowledge:read",
        "List knowledge bases", layers=("base",), access=(DATABASE, REDIS)),
    _kb("knowledge-bases-get", "get_knowledge_base", "GET", _KB, "knowledge:read", "One knowledge base",
        layers=("base",), access=(DATABASE, REDIS)),
    _kb("knowledge-bases-update", "update_knowledge_base", "PATCH", _KB, "knowledge:write",
        "Change a knowledge base", layers=("base",), access=(DATABASE, REDIS)),
    _kb("knowledge-bases-delete", "delete_knowledge_base", "DELETE", _KB, "knowledge:write",
        "Delete a knowledge base with its documents, vectors and files (asynchronous)",
        layers=("base", "aws"), access=(DATABASE, REDIS, state_machine("knowledge-base-delete", "start"))),
    _kb("documents-create", "create_document", "POST", _KB + "/documents", "knowledge:write",
        "Add a document: a presigned upload, or inline text", tag="documents",
        layers=("base", "aws"), access=(DATABASE, REDIS, _UPLOADS_WRITE),
        too_large_hint="send the document as an upload instead: POST content_type and size (without text) to get a "
                       "presigned upload form, then POST the file to its url with its fields"),
    _kb("documents-list", "list_documents", "GET", _KB + "/documents", "knowledge:read", "List documents",
        tag="documents", layers=("base",), access=(DATABASE, REDIS)),
    _kb("documents-get", "get_document", "GET", _DOC, "knowledge:read",
        "One document with its indexing status and progress", tag="documents", layers=("base",),
        access=(DATABASE, REDIS)),
    _kb("documents-update", "update_document", "PATCH", _DOC, "knowledge:write",
        "Change a document's name, metadata or tags", tag="documents"),
    _kb("documents-delete", "delete_document", "DELETE", _DOC, "knowledge:write",
        "Delete a document with its segments, vectors and file", tag="documents",
        layers=("base", "aws", "search"), access=(DATABASE, REDIS, OPENSEARCH, _UPLOADS_DELETE)),
    _kb("documents-reindex", "reindex_document", "POST", _DOC + "/reindex", "knowledge:write",
        "Index a document again (optionally with new chunking)", tag="documents",
        layers=("base", "aws", "search"), access=(DATABASE, REDIS, OPENSEARCH, queue("ingest", "send"))),
    _kb("documents-preview-chunks", "preview_chunks", "POST", _KB + "/documents/preview-chunks",
        "knowledge:read", "The segments a chunking configuration would produce", tag="documents",
        layers=("base", "parse", "embed"), access=(DATABASE, REDIS, _UPLOADS_READ), memory_mb=1024, timeout_s=28),
    _kb("segments-list", "list_segments", "GET", _DOC + "/segments", "knowledge:read",
        "A document's segments", tag="segments", layers=("base",), access=(DATABASE, REDIS)),
    _kb("segments-create", "create_segment", "POST", _DOC + "/segments", "knowledge:write",
        "Add a segment by hand (embedded at once)", tag="segments", layers=EMBED_LAYERS,
        access=EMBED_ACCESS, memory_mb=1024, timeout_s=28),
    _kb("segments-update", "update_segment", "PATCH", _DOC + "/segments/{segment_id}", "knowledge:write",
        "Edit a segment's text (re-embedded) or enable/disable it", tag="segments", layers=EMBED_LAYERS,
        access=EMBED_ACCESS, memory_mb=1024, timeout_s=28),
    _kb("retrieve", "retrieve", "POST", _KB + "/retrieve", "knowledge:read",
        "Search one knowledge base (semantic, full-text or hybrid)", tag="retrieval", layers=EMBED_LAYERS,
        access=EMBED_ACCESS, memory_mb=1024, timeout_s=28),
    _kb("retrieve-multi", "retrieve_multi", "POST", "/api/v1/retrieve", "knowledge:read",
        "Search several knowledge bases at once", tag="retrieval", layers=EMBED_LAYERS,
        access=EMBED_ACCESS, memory_mb=1024, timeout_s=28),
    # Ingestion -------------------------------------------------------------------
    Function("documents-ingest", "functions.knowledge.ingest", _K, Queue("ingest", batch_size=1),
             memory_mb=2048, timeout_s=900, layers=("base", "aws", "search", "parse", "embed", "llm"),
             access=(*EMBED_ACCESS, _UPLOADS_READ, state_machine("ingest", "start")),
             description="Parses, chunks and embeds a document whose file landed in S3"),
    Function("documents-embed-batch", "functions.knowledge.embed_batch", _K, StepFunctionsTask("ingest"),
             memory_mb=2048, timeout_s=300, layers=EMBED_LAYERS, access=EMBED_ACCESS,
             description="Embeds one batch of a large document's segments (a Map item)"),
    Function("documents-finish", "functions.knowledge.finish_document", _K, StepFunctionsTask("ingest"),
             access=(DATABASE, REDIS), description="Marks a fanned-out document indexed or failed"),
    Function("documents-sweep", "functions.knowledge.sweep_documents", _K,
             Schedule("rate(5 minutes)", "Retry or fail documents stuck in a non-final state"),
             layers=("base", "aws"), access=(DATABASE, queue("ingest", "send"), _UPLOADS_READ),
             description="Retries (then fails) documents whose indexing stopped moving"),
    Function("knowledge-bases-purge", "functions.knowledge.purge_knowledge_base", _K,
             StepFunctionsTask("knowledge-base-delete"), timeout_s=300, layers=("base", "aws", "search"),
             access=(DATABASE, OPENSEARCH, _UPLOADS_PURGE),
             description="Removes one batch of a deleted knowledge base's documents, vectors and files"),
)

QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec("ingest", _K, max_receive_count=3,
              s3_notifications=(S3Notification("uploads", "tenants/"),),
              description="Uploaded documents (S3 events) and re-index requests for the indexing function"),
)

STATE_MACHINES: tuple[StateMachineSpec, ...] = (
    StateMachineSpec("ingest", _K, "shared.knowledge.state_machines:ingest_definition",
                     "Embed a large document's segments in batches (Map), then mark it indexed"),
    StateMachineSpec("knowledge-base-delete", _K, "shared.knowledge.state_machines:delete_definition",
                     "Remove a deleted knowledge base's documents, vectors and files batch by batch"),
)


