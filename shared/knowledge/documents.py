"""Document use cases: add (a presigned upload form, or inline text), list, read, update
(name, metadata, tags), delete, re-index, and preview the segments a chunking would produce.
Indexing itself runs in :mod:`shared.knowledge.ingestion`."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from typing import Any

from shared.auth.principal import Principal
from shared.db.paging import Page, PageRequest
from shared.errors import Conflict
from shared.ids import new_id
from shared.knowledge import repository as repo
from shared.knowledge.api import (
    CreateDocument,
    DocumentCreated,
    DocumentError,
    DocumentOut,
    DocumentProgress,
    PreviewChunks,
    PreviewOut,
    PreviewSegment,
    UpdateDocument,
    UploadForm,
)
from shared.knowledge.errors import DocumentNotFound as DocumentNotFoundError
from shared.knowledge.errors import DocumentTooLarge
from shared.knowledge.service import KnowledgeCore, field_error
from shared.knowledge.storage import IngestQueue, document_key
from shared.knowledge.types import INDEXING_STATUSES, ChunkingConfig, DocumentStatus
from shared.observability import tracer


def document_out(row: dict[str, Any]) -> DocumentOut:
    total, done = row["segments_total"], row["segments_done"]
    percent = 100.0 if row["status"] == "indexed" else round(100.0 * done / total, 1) if total else 0.0
    error = DocumentError(code=row["error_code"] or "document_failed", message=row["error"] or "") \
        if row["status"] == "failed" else None
    return DocumentOut(id=row["id"], knowledge_base_id=row["knowledge_base_id"], name=row["name"],
                       content_type=row["content_type"], size=row["size"], source=row["source"],
                       status=row["status"], error=error,
                       progress=DocumentProgress(segments_done=done, segments_total=total, percent=percent),
                       tokens=row["tokens"], pages=row["pages"], timings=row["timings"] or {},
                       metadata=row["metadata"], tags=row["tags"],
                       chunking=ChunkingConfig.model_validate(row["chunking"]), content_hash=row["content_hash"],
                       attempt=row["attempt"], created_at=row["created_at"], updated_at=row["updated_at"],
                       indexed_at=row["indexed_at"], version=row["version"])


class DocumentService(KnowledgeCore):
    @tracer.capture_method(capture_response=False)
    def create_document(self, principal: Principal, kb_id: uuid.UUID, body: CreateDocument) -> DocumentCreated:
        from shared.knowledge.parsing import SUPPORTED_CONTENT_TYPES, detect_format

        tenant_id = principal.tenant
        settings = self._d.settings
        with self._db.transaction(tenant_id) as conn:
            kb = self._knowledge_base(conn, tenant_id, kb_id)
        if body.text is not None:
            content_type = "text/markdown" if body.name.lower().endswith((".md", ".markdown")) else "text/plain"
            size, source = len(body.text.encode()), "text"
            if size > settings.max_document_bytes:
                raise DocumentTooLarge(f"The text is larger than the {settings.max_document_bytes} bytes allowed",
                                       details={"max_bytes": settings.max_document_bytes, "size": size})
        else:
            assert body.content_type is not None and body.size is not None
            content_type = body.content_type.split(";", 1)[0].strip().lower()
            size, source = body.size, "upload"
            if content_type not in SUPPORTED_CONTENT_TYPES:
                detect_format(content_type, body.name)  # raises document_unsupported_type (422)
            if size > settings.max_document_bytes:
                raise DocumentTooLarge(f"The file is larger than the {settings.max_document_bytes} bytes allowed",
                                       details={"max_bytes": settings.max_document_bytes, "size": size})
        chunking = body.chunking or ChunkingConfig.model_validate(kb["chunking"])
        if body.chunking is not None:
            _, spec = self._embedding_spec(tenant_id, kb["embedding_model"], "body.chunking")
            self._check_chunking(chunking, spec, "body.chunking")
        document_id = new_id()
        key = document_key(tenant_id, kb_id, document_id)
        with self._db.transaction(tenant_id) as conn:
            row = repo.insert_document(conn, document_id=document_id, tenant_id=tenant_id, kb_id=kb_id,
                                       name=body.name, content_type=content_type, size=size, source=source,
                                       s3_key=key, metadata=dict(body.metadata), tags=list(body.tags),
                                       chunking=chunking.model_dump(mode="json"))
        upload = None
        if body.text is not None:
            text = body.text
            row = self._store_content(tenant_id, document_id, row, lambda: self._files().put_text(key, text))
        else:
            form = self._files().presigned_upload(key, content_type, size, settings.upload_url_ttl_s)
            upload = UploadForm(url=form.url, fields=form.fields, expires_at=form.expires_at)
        return DocumentCreated(**document_out(row).model_dump(), upload=upload)

    def _store_content(self, tenant_id: uuid.UUID, document_id: uuid.UUID, row: dict[str, Any],
                       put: Callable[[], None]) -> dict[str, Any]:
        """Store a document's content (``put``) after its row's commit: the S3 event that follows
        must find the document. If the content cannot be stored, the document is taken back:
        nothing is left half-made."""
        try:
            put()
        except Exception:
            with self._db.transaction(tenant_id) as conn:
                repo.delete_document_row(conn, tenant_id, document_id)
            raise
        with self._db.transaction(tenant_id) as conn:
            return repo.mark_uploaded(conn, tenant_id, document_id) or row

    @tracer.capture_method(capture_response=False)
    def create_document_content(self, principal: Principal, kb_id: uuid.UUID, name: str, content_type: str,
                                data: bytes, chunking: ChunkingConfig | None = None,
                                metadata: dict[str, Any] | None = None) -> DocumentOut:
        """A document whose bytes the caller holds (a compatible API's inline file, an uploaded
        file): checked as an upload is (type, size), stored at once, then indexed like any
        upload (the S3 event). ``chunking`` None: the knowledge base's."""
        from shared.knowledge.parsing import SUPPORTED_CONTENT_TYPES, detect_format

        tenant_id = principal.tenant
        settings = self._d.settings
        with self._db.transaction(tenant_id) as conn:
            kb = self._knowledge_base(conn, tenant_id, kb_id)
        content_type = content_type.split(";", 1)[0].strip().lower()
        if content_type not in SUPPORTED_CONTENT_TYPES:
            detect_format(content_type, name)  # raises document_unsupported_type (422)
        if not data:
            raise field_error("file", "The file is empty", "document_empty")
        if len(data) > settings.max_document_bytes:
            raise DocumentTooLarge(f"The file is larger than the {settings.max_document_bytes} bytes allowed",
                                   details={"max_bytes": settings.max_document_bytes, "size": len(data)})
        if chunking is not None:
            _, spec = self._embedding_spec(tenant_id, kb["embedding_model"], "chunking")
            self._check_chunking(chunking, spec, "chunking")
        document_id = new_id()
        key = document_key(tenant_id, kb_id, document_id)
        with self._db.transaction(tenant_id) as conn:
            row = repo.insert_document(conn, document_id=document_id, tenant_id=tenant_id, kb_id=kb_id, name=name,
                                       content_type=content_type, size=len(data), source="upload", s3_key=key,
                                       metadata=dict(metadata or {}), tags=[],
                                       chunking=(chunking or ChunkingConfig.model_validate(kb["chunking"]))
                                       .model_dump(mode="json"))
        row = self._store_content(tenant_id, document_id, row,
                                  lambda: self._files().put_bytes(key, data, content_type))
        return document_out(row)

    @tracer.capture_method(capture_response=False)
    def find_document(self, principal: Principal, document_id: uuid.UUID) -> DocumentOut:
        """A document of the tenant by its id alone, whatever its knowledge base (APIs that name
        documents without their knowledge base)."""
        with self._db.transaction(principal.tenant) as conn:
            row = repo.get_document(conn, principal.tenant, document_id)
        if row is None:
            raise DocumentNotFoundError(details={"document_id": str(document_id)})
        return document_out(row)

    @tracer.capture_method(capture_response=False)
    def list_documents(self, principal: Principal, kb_id: uuid.UUID, status: DocumentStatus | None,
                       page: PageRequest) -> Page[DocumentOut]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            self._knowledge_base(conn, tenant_id, kb_id, active=False)
            rows, total = repo.list_documents(conn, tenant_id, kb_id, status, page)
        return Page.of([document_out(r) for r in rows], page, total)

    @tracer.capture_method(capture_response=False)
    def get_document(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID) -> DocumentOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            return document_out(self._document(conn, tenant_id, kb_id, document_id))

    @tracer.capture_method(capture_response=False)
    def update_document(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID,
                        body: UpdateDocument) -> DocumentOut:
        tenant_id = principal.tenant
        values: dict[str, Any] = {}
        if body.name is not None:
            values["name"] = body.name
        if body.metadata is not None:
            values["metadata"] = dict(body.metadata)
        if body.tags is not None:
            values["tags"] = list(body.tags)
        with self._db.transaction(tenant_id) as conn:
            current = self._document(conn, tenant_id, kb_id, document_id, lock=True)
            if not values:
                if current["version"] != body.version:
                    raise Conflict("The document changed since it was read", code="document_version_conflict")
                return document_out(current)
            row = repo.update_document_fields(conn, tenant_id, document_id, values, body.version)
            if row is None:
                raise Conflict("The document changed since it was read; read it again",
                               code="document_version_conflict")
        if "metadata" in values or "tags" in values:
            # After the commit (the store writes through its own connection); if it refuses,
            # the document takes its old fields back and the call can be repeated.
            try:
                self._store().update_document_fields(tenant_id, kb_id, document_id, row["metadata"], row["tags"])
            except Exception:
                with self._db.transaction(tenant_id) as conn:
                    repo.update_document_fields(conn, tenant_id, document_id,
                                                {name: current[name] for name in values}, row["version"])
                raise
        return document_out(row)

    @tracer.capture_method(capture_response=False)
    def delete_document(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID) -> None:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            row = self._document(conn, tenant_id, kb_id, document_id)
        # Vectors and file go first, outside the transaction: if either fails the document
        # stays (unsearchable parts are re-deleted), and the call can be repeated.
        self._store().delete_document(tenant_id, kb_id, document_id)
        self._files().delete(row["s3_key"])
        with self._db.transaction(tenant_id) as conn:
            repo.soft_delete_document(conn, tenant_id, document_id)

    @tracer.capture_method(capture_response=False)
    def reindex_document(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID,
                         chunking: ChunkingConfig | None) -> DocumentOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            kb = self._knowledge_base(conn, tenant_id, kb_id)
        if chunking is not None:
            _, spec = self._embedding_spec(tenant_id, kb["embedding_model"], "body.chunking")
            self._check_chunking(chunking, spec, "body.chunking")
        with self._db.transaction(tenant_id) as conn:
            current = self._document(conn, tenant_id, kb_id, document_id, lock=True)
            if current["status"] == "pending_upload":
                raise Conflict("The document's file has not been uploaded yet", code="document_not_uploaded")
            if current["status"] in INDEXING_STATUSES:
                raise Conflict("The document is being indexed; wait for it to finish or fail",
                               code="document_indexing_in_progress", details={"status": current["status"]})
            row = repo.reset_for_reindex(conn, tenant_id, document_id,
                                         chunking.model_dump(mode="json") if chunking else None)
            assert row is not None
        # After the commit (the segments are gone, the document waits as "uploaded"): the old
        # vectors go, then the indexing request. If either fails the sweeper retries it.
        self._store().delete_document(tenant_id, kb_id, document_id)
        queue: IngestQueue = self._d.queue()
        queue.send({"type": "index", "tenant_id": str(tenant_id), "document_id": str(document_id),
                    "attempt": row["attempt"]})
        return document_out(row)

    @tracer.capture_method(capture_response=False)
    def preview_chunks(self, principal: Principal, kb_id: uuid.UUID, body: PreviewChunks) -> PreviewOut:
        from pathlib import Path

        from shared.knowledge.boilerplate import BoilerplateFilter
        from shared.knowledge.chunking import preview_chunks
        from shared.knowledge.parsing import detect_format, parse
        from shared.knowledge.types import Block

        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            kb = self._knowledge_base(conn, tenant_id, kb_id, active=False)
            document = self._document(conn, tenant_id, kb_id, body.document_id) if body.document_id else None
        model_name, spec = self._embedding_spec(tenant_id, kb["embedding_model"], "knowledge_base.embedding_model")
        chunking = body.chunking or ChunkingConfig.model_validate(
            document["chunking"] if document else kb["chunking"])
        self._check_chunking(chunking, spec, "body.chunking")
        counter = self._d.token_counter(spec)
        # As ingestion does: boilerplate lines never reach the chunker.
        boilerplate = BoilerplateFilter()
        with tempfile.NamedTemporaryFile(prefix="stratus-preview-") as spool:
            if document is None:
                assert body.text is not None
                chunks = preview_chunks(boilerplate([Block(text=body.text)]), chunking, counter, body.limit + 1)
            else:
                if document["status"] == "pending_upload":
                    raise Conflict("The document's file has not been uploaded yet", code="document_not_uploaded")
                self._files().download(document["s3_key"], spool, self._d.settings.max_document_bytes)
                with parse(Path(spool.name), detect_format(document["content_type"], document["name"])) as blocks:
                    chunks = preview_chunks(boilerplate(blocks), chunking, counter, body.limit + 1)
        # Parent-child: the limit counts parents, each shown with its children.
        parents = chunking.strategy == "parent_child"
        counted = [c for c in chunks if c.kind == "parent"] if parents else chunks
        truncated = len(counted) > body.limit
        if truncated:
            cut = chunks.index(counted[body.limit])
            chunks = chunks[:cut]
        return PreviewOut(embedding_model=model_name, chunking=chunking, truncated=truncated,
                          boilerplate_lines=boilerplate.removed,
                          segments=[PreviewSegment(position=c.position, kind=c.kind, parent_position=c.parent_position,
                                                   text=c.text, tokens=c.tokens, page=c.page) for c in chunks])
