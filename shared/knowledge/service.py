"""Knowledge-base use cases behind the HTTP API: knowledge bases, documents (uploads and
inline text), segments, chunk previews. Indexing itself runs in :mod:`shared.knowledge.ingestion`."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg.errors import UniqueViolation

from shared.auth.principal import Principal
from shared.config import Settings
from shared.db.database import Database
from shared.db.paging import Page, PageRequest
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.ids import new_id
from shared.knowledge import repository as repo
from shared.knowledge.api import (
    CreateDocument,
    CreateKnowledgeBase,
    CreateSegment,
    DocumentCreated,
    DocumentError,
    DocumentOut,
    DocumentProgress,
    KnowledgeBaseOut,
    PreviewChunks,
    PreviewOut,
    PreviewSegment,
    RetrievalSettings,
    SegmentOut,
    UpdateDocument,
    UpdateKnowledgeBase,
    UpdateSegment,
    UploadForm,
)
from shared.knowledge.errors import (
    DocumentNotFound,
    DocumentTooLarge,
    KnowledgeBaseNameTaken,
    KnowledgeBaseNotFound,
    SegmentNotFound,
)
from shared.knowledge.storage import DocumentFiles, Executions, IngestQueue, document_key
from shared.knowledge.types import INDEXING_STATUSES, ChunkingConfig, DocumentStatus, SegmentKind, TokenCounter
from shared.knowledge.vectorstore.ports import IndexedSegment, VectorStore
from shared.models.spec import Capability, ModelSpec

Provider = Callable[[], Any]



def default_chunking(spec: ModelSpec) -> ChunkingConfig:
    """Segments that fit the model: 500 tokens (as Dify) or 80 % of a smaller model's input limit."""
    size = max(32, min(500, int(spec.max_input_tokens * 0.8)))
    return ChunkingConfig(chunk_size=size, chunk_overlap=size // 10)


def kb_out(row: dict[str, Any]) -> KnowledgeBaseOut:
    return KnowledgeBaseOut(id=row["id"], name=row["name"], description=row["description"],
                            embedding_model=row["embedding_model"], dimensions=row["dimensions"],
                            chunking=ChunkingConfig.model_validate(row["chunking"]),
                            retrieval=RetrievalSettings.model_validate(row["retrieval"]), status=row["status"],
                            document_count=row["document_count"], segment_count=row["segment_count"],
                            created_at=row["created_at"], updated_at=row["updated_at"], version=row["version"])


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


def segment_out(row: dict[str, Any]) -> SegmentOut:
    return SegmentOut(**{name: row[name] for name in SegmentOut.model_fields})


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _field_error(field: str, message: str, code: str = "biz_validation_failed") -> ValidationFailed:
    return ValidationFailed(message, code=code, details={"fields": [{"field": field, "type": "value_error",
                                                                     "message": message}]})


@dataclass
class KnowledgeDeps:
    """Ports, built lazily: a function pays only for those its use case touches."""

    db: Database
    settings: Settings
    gateway: Provider  # -> ModelGateway
    store: Provider  # -> VectorStore
    files: Provider  # -> DocumentFiles
    queue: Provider  # -> IngestQueue
    executions: Provider  # -> Executions
    token_counter: Callable[[ModelSpec], TokenCounter]


class KnowledgeService:
    def __init__(self, deps: KnowledgeDeps) -> None:
        self._d = deps
        self._db = deps.db

    # Helpers ---------------------------------------------------------------------------------
    def _store(self) -> VectorStore:
        store: VectorStore = self._d.store()
        return store

    def _files(self) -> DocumentFiles:
        files: DocumentFiles = self._d.files()
        return files

    def embedding_spec(self, tenant_id: uuid.UUID, name: str | None, field: str) -> tuple[str, ModelSpec]:
        """The embedding model by name (or the default), checked for use; a 422 naming ``field``."""
        from shared.models.errors import ModelNotConfigured

        try:
            target = self._d.gateway().target(tenant_id, name, Capability.EMBEDDING)
        except NotFound as exc:
            raise _field_error(field, exc.message, "model_not_found") from exc
        except ModelNotConfigured as exc:
            raise _field_error(field, exc.message, exc.code) from exc
        return target.model.name, target.spec

    def _check_chunking(self, config: ChunkingConfig, spec: ModelSpec, field: str) -> None:
        from shared.knowledge.tokens import validate_chunking

        # The model's limit counts its special tokens; the chunker's counts do not.
        validate_chunking(config, spec, field=f"{field}.chunk_size")

    def _kb(self, conn: Any, tenant_id: uuid.UUID, kb_id: uuid.UUID, *, active: bool = True) -> dict[str, Any]:
        row = repo.get_knowledge_base(conn, tenant_id, kb_id)
        if row is None:
            raise KnowledgeBaseNotFound(details={"knowledge_base_id": str(kb_id)})
        if active and row["status"] != "active":
            raise Conflict("The knowledge base is being deleted", code="knowledge_base_deleting")
        return row

    def _document(self, conn: Any, tenant_id: uuid.UUID, kb_id: uuid.UUID, document_id: uuid.UUID,
                  *, lock: bool = False) -> dict[str, Any]:
        row = repo.get_document(conn, tenant_id, document_id, kb_id, lock=lock)
        if row is None:
            raise DocumentNotFound(details={"document_id": str(document_id)})
        return row

    # Knowledge bases ---------------------------------------------------------------------------
    def create_knowledge_base(self, principal: Principal, body: CreateKnowledgeBase) -> KnowledgeBaseOut:
        tenant_id = principal.tenant
        model_name, spec = self.embedding_spec(tenant_id, body.embedding_model, "body.embedding_model")
        chunking = body.chunking or default_chunking(spec)
        self._check_chunking(chunking, spec, "body.chunking")
        retrieval = body.retrieval or RetrievalSettings()
        assert spec.dimensions is not None  # embedding specs declare them
        self._store().ensure_index(spec.dimensions)
        try:
            with self._db.transaction(tenant_id) as conn:
                row = repo.insert_knowledge_base(conn, new_id(), tenant_id, body.name, body.description, model_name,
                                                 spec.dimensions, chunking.model_dump(mode="json"),
                                                 retrieval.model_dump(mode="json"))
        except UniqueViolation as exc:
            raise KnowledgeBaseNameTaken(details={"name": body.name}) from exc
        return kb_out(row)

    def list_knowledge_bases(self, principal: Principal, page: PageRequest) -> Page[KnowledgeBaseOut]:
        with self._db.transaction(principal.tenant) as conn:
            rows, total = repo.list_knowledge_bases(conn, principal.tenant, page)
        return Page.of([kb_out(r) for r in rows], page, total)

    def get_knowledge_base(self, principal: Principal, kb_id: uuid.UUID) -> KnowledgeBaseOut:
        with self._db.transaction(principal.tenant) as conn:
            return kb_out(self._kb(conn, principal.tenant, kb_id, active=False))

    def update_knowledge_base(self, principal: Principal, kb_id: uuid.UUID,
                              body: UpdateKnowledgeBase) -> KnowledgeBaseOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            current = self._kb(conn, tenant_id, kb_id)
        values: dict[str, Any] = {}
        if body.name is not None:
            values["name"] = body.name
        if body.description is not None:
            values["description"] = body.description
        model_name, spec = current["embedding_model"], None
        if body.embedding_model is not None and body.embedding_model.lower() != current["embedding_model"].lower():
            model_name, spec = self.embedding_spec(tenant_id, body.embedding_model, "body.embedding_model")
            assert spec.dimensions is not None
            values.update(embedding_model=model_name, dimensions=spec.dimensions)
        if body.chunking is not None or spec is not None:
            if spec is None:
                _, spec = self.embedding_spec(tenant_id, current["embedding_model"], "body.chunking")
            chunking = body.chunking or ChunkingConfig.model_validate(current["chunking"])
            self._check_chunking(chunking, spec, "body.chunking")
            values["chunking"] = chunking.model_dump(mode="json")
        if body.retrieval is not None:
            values["retrieval"] = body.retrieval.model_dump(mode="json")
        if "dimensions" in values:
            self._store().ensure_index(values["dimensions"])
        try:
            with self._db.transaction(tenant_id) as conn:
                if "embedding_model" in values and repo.knowledge_base_has_documents(conn, tenant_id, kb_id):
                    raise Conflict("The embedding model is fixed once the knowledge base holds documents",
                                   code="knowledge_base_embedding_model_locked")
                if values and not repo.update_knowledge_base(conn, tenant_id, kb_id, values, body.version):
                    raise Conflict("The knowledge base changed since it was read; read it again",
                                   code="knowledge_base_version_conflict")
                if not values and current["version"] != body.version:
                    raise Conflict("The knowledge base changed since it was read; read it again",
                                   code="knowledge_base_version_conflict")
                row = self._kb(conn, tenant_id, kb_id, active=False)
        except UniqueViolation as exc:
            raise KnowledgeBaseNameTaken(details={"name": body.name}) from exc
        return kb_out(row)

    def delete_knowledge_base(self, principal: Principal, kb_id: uuid.UUID) -> KnowledgeBaseOut:
        """Mark it deleting and start the removal of its documents, vectors and files; GET
        shows "deleting" until it is gone (then 404)."""
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            self._kb(conn, tenant_id, kb_id, active=False)
            arn = self._d.settings.knowledge_base_delete_state_machine_arn
            if not arn:
                raise RuntimeError("KNOWLEDGE_BASE_DELETE_STATE_MACHINE_ARN is not set")
            repo.mark_knowledge_base_deleting(conn, tenant_id, kb_id)
            row = self._kb(conn, tenant_id, kb_id, active=False)
        # Started after the commit (the state machine must see "deleting"); a repeated DELETE
        # names the same execution, so it starts once.
        executions: Executions = self._d.executions()
        executions.start(arn, f"kb-delete-{kb_id}", {"tenant_id": str(tenant_id), "knowledge_base_id": str(kb_id)},
                         restart=True)
        return kb_out(row)

    # Documents ---------------------------------------------------------------------------------
    def create_document(self, principal: Principal, kb_id: uuid.UUID, body: CreateDocument) -> DocumentCreated:
        from shared.knowledge.parsing import SUPPORTED_CONTENT_TYPES, detect_format

        tenant_id = principal.tenant
        settings = self._d.settings
        with self._db.transaction(tenant_id) as conn:
            kb = self._kb(conn, tenant_id, kb_id)
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
            _, spec = self.embedding_spec(tenant_id, kb["embedding_model"], "body.chunking")
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
            # After the commit: the S3 event that follows must find the document. If the text
            # cannot be stored, the document is taken back: nothing is left half-made.
            try:
                self._files().put_text(key, body.text)
            except Exception:
                with self._db.transaction(tenant_id) as conn:
                    repo.delete_document_row(conn, tenant_id, document_id)
                raise
            with self._db.transaction(tenant_id) as conn:
                row = repo.mark_uploaded(conn, tenant_id, document_id) or row
        else:
            form = self._files().presigned_upload(key, content_type, size, settings.upload_url_ttl_s)
            upload = UploadForm(url=form.url, fields=form.fields, expires_at=form.expires_at)
        return DocumentCreated(**document_out(row).model_dump(), upload=upload)

    def list_documents(self, principal: Principal, kb_id: uuid.UUID, status: DocumentStatus | None,
                       page: PageRequest) -> Page[DocumentOut]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            self._kb(conn, tenant_id, kb_id, active=False)
            rows, total = repo.list_documents(conn, tenant_id, kb_id, status, page)
        return Page.of([document_out(r) for r in rows], page, total)

    def get_document(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID) -> DocumentOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            return document_out(self._document(conn, tenant_id, kb_id, document_id))

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

    def reindex_document(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID,
                         chunking: ChunkingConfig | None) -> DocumentOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            kb = self._kb(conn, tenant_id, kb_id)
        if chunking is not None:
            _, spec = self.embedding_spec(tenant_id, kb["embedding_model"], "body.chunking")
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

    def preview_chunks(self, principal: Principal, kb_id: uuid.UUID, body: PreviewChunks) -> PreviewOut:
        from pathlib import Path

        from shared.knowledge.chunking import preview_chunks
        from shared.knowledge.parsing import detect_format, parse
        from shared.knowledge.types import Block

        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            kb = self._kb(conn, tenant_id, kb_id, active=False)
            document = self._document(conn, tenant_id, kb_id, body.document_id) if body.document_id else None
        model_name, spec = self.embedding_spec(tenant_id, kb["embedding_model"], "knowledge_base.embedding_model")
        chunking = body.chunking or ChunkingConfig.model_validate(
            document["chunking"] if document else kb["chunking"])
        self._check_chunking(chunking, spec, "body.chunking")
        counter = self._d.token_counter(spec)
        with tempfile.NamedTemporaryFile(prefix="stratus-preview-") as spool:
            if document is None:
                assert body.text is not None
                chunks = preview_chunks([Block(text=body.text)], chunking, counter, body.limit + 1)
            else:
                if document["status"] == "pending_upload":
                    raise Conflict("The document's file has not been uploaded yet", code="document_not_uploaded")
                self._files().download(document["s3_key"], spool, self._d.settings.max_document_bytes)
                with parse(Path(spool.name), detect_format(document["content_type"], document["name"])) as blocks:
                    chunks = preview_chunks(blocks, chunking, counter, body.limit + 1)
        # Parent-child: the limit counts parents, each shown with its children.
        parents = chunking.strategy == "parent_child"
        counted = [c for c in chunks if c.kind == "parent"] if parents else chunks
        truncated = len(counted) > body.limit
        if truncated:
            cut = chunks.index(counted[body.limit])
            chunks = chunks[:cut]
        return PreviewOut(embedding_model=model_name, chunking=chunking, truncated=truncated,
                          segments=[PreviewSegment(position=c.position, kind=c.kind, parent_position=c.parent_position,
                                                   text=c.text, tokens=c.tokens, page=c.page) for c in chunks])

    # Segments ----------------------------------------------------------------------------------
    def list_segments(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID, kind: SegmentKind | None,
                      enabled: bool | None, page: PageRequest) -> Page[SegmentOut]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            self._document(conn, tenant_id, kb_id, document_id)
            rows, total = repo.list_segments(conn, tenant_id, document_id, kind, enabled, page)
        return Page.of([segment_out(r) for r in rows], page, total)

    def _embed_one(self, tenant_id: uuid.UUID, kb: dict[str, Any], text: str) -> tuple[list[float], int]:
        _, spec = self.embedding_spec(tenant_id, kb["embedding_model"], "knowledge_base.embedding_model")
        tokens = self._d.token_counter(spec).count([text])[0]
        if tokens > spec.max_input_tokens:
            raise _field_error("body.text", f"The text has {tokens} tokens; embedding model {spec.name} takes at "
                                            f"most {spec.max_input_tokens}", "segment_too_long")
        result = self._d.gateway().embed(tenant_id, [text], kb["embedding_model"])
        return result.vectors[0], tokens

    def create_segment(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID,
                       body: CreateSegment) -> SegmentOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            kb = self._kb(conn, tenant_id, kb_id)
            document = self._document(conn, tenant_id, kb_id, document_id)
        if document["status"] != "indexed":
            raise Conflict("Segments can be added to an indexed document", code="document_not_indexed",
                           details={"status": document["status"]})
        vector, tokens = self._embed_one(tenant_id, kb, body.text)
        with self._db.transaction(tenant_id) as conn:
            locked = self._document(conn, tenant_id, kb_id, document_id, lock=True)
            if locked["status"] != "indexed" or locked["attempt"] != document["attempt"]:
                # Re-indexed meanwhile: its segments are being rebuilt.
                raise Conflict("The document is being re-indexed; add the segment when it is indexed",
                               code="document_not_indexed", details={"status": locked["status"]})
            document = locked
            position = repo.next_position(conn, tenant_id, document_id)
            # A random id: a manual segment never shares the id of an automatic one.
            seg_id = new_id()
            repo.insert_segments(conn, [(seg_id, tenant_id, kb_id, document_id, "chunk", position, None, body.text,
                                         tokens, None, content_hash(body.text), "manual")])
            if not body.enabled:
                repo.update_segment(conn, tenant_id, seg_id, {"enabled": False}, 1)
        # The store writes after the commit (it indexes only segments that exist); if it
        # fails, the segment is taken back and the call can be repeated.
        try:
            self._store().upsert(tenant_id, kb_id, kb["dimensions"], [IndexedSegment(
                seg_id, document_id, body.text, vector, document["metadata"], document["tags"], body.enabled)])
        except Exception:
            with self._db.transaction(tenant_id) as conn:
                repo.delete_segment(conn, tenant_id, seg_id)
            raise
        with self._db.transaction(tenant_id) as conn:
            repo.mark_indexed(conn, tenant_id, [seg_id])
            repo.refresh_progress(conn, tenant_id, document_id)
            row = repo.get_segment(conn, tenant_id, document_id, seg_id)
        assert row is not None
        return segment_out(row)

    def update_segment(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID,
                       seg_id: uuid.UUID, body: UpdateSegment) -> SegmentOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            kb = self._kb(conn, tenant_id, kb_id)
            self._document(conn, tenant_id, kb_id, document_id)
            current = repo.get_segment(conn, tenant_id, document_id, seg_id)
        if current is None:
            raise SegmentNotFound(details={"segment_id": str(seg_id)})
        if current["version"] != body.version:
            raise Conflict("The segment changed since it was read; read it again", code="segment_version_conflict")
        values: dict[str, Any] = {}
        vector: list[float] | None = None
        if body.text is not None and body.text != current["text"]:
            values.update(text=body.text, content_hash=content_hash(body.text))
            if current["kind"] == "chunk":  # parents are returned, never searched: nothing to embed
                vector, values["tokens"] = self._embed_one(tenant_id, kb, body.text)
            else:
                _, spec = self.embedding_spec(tenant_id, kb["embedding_model"], "knowledge_base.embedding_model")
                values["tokens"] = self._d.token_counter(spec).count([body.text])[0]
        if body.enabled is not None and body.enabled != current["enabled"]:
            values["enabled"] = body.enabled
        if not values:
            return segment_out(current)
        with self._db.transaction(tenant_id) as conn:
            document = self._document(conn, tenant_id, kb_id, document_id)
            row = repo.update_segment(conn, tenant_id, seg_id, values, body.version)
            if row is None:
                raise Conflict("The segment changed since it was read; read it again",
                               code="segment_version_conflict")
            if "tokens" in values:
                repo.refresh_progress(conn, tenant_id, document_id)
        if current["kind"] == "chunk" and current["index_status"] == "indexed":
            try:
                store = self._store()
                if vector is not None:
                    store.upsert(tenant_id, kb_id, kb["dimensions"], [IndexedSegment(
                        seg_id, document_id, row["text"], vector, document["metadata"], document["tags"],
                        row["enabled"])])
                elif "enabled" in values:
                    store.set_enabled(tenant_id, kb_id, [seg_id], row["enabled"])
            except Exception:
                # The store still holds the old segment: so does the database again.
                with self._db.transaction(tenant_id) as conn:
                    repo.update_segment(conn, tenant_id, seg_id, {name: current[name] for name in values},
                                        row["version"])
                    repo.refresh_progress(conn, tenant_id, document_id)
                raise
        return segment_out(row)
