"""Segment use cases: list a document's segments, add one by hand, change one's text (embedded
again) or whether it is searched. The vector store follows the database; a store failure
takes the database change back."""

from __future__ import annotations

import uuid
from typing import Any

from shared.auth.principal import Principal
from shared.db.paging import Page, PageRequest
from shared.errors import Conflict
from shared.ids import new_id
from shared.knowledge import repository as repo
from shared.knowledge.api import CreateSegment, SegmentOut, UpdateSegment
from shared.knowledge.errors import SegmentNotFound
from shared.knowledge.service import KnowledgeCore, content_hash, field_error
from shared.knowledge.types import SegmentKind
from shared.knowledge.vectorstore.ports import IndexedSegment
from shared.observability import tracer


def segment_out(row: dict[str, Any]) -> SegmentOut:
    return SegmentOut(**{name: row[name] for name in SegmentOut.model_fields})


class SegmentService(KnowledgeCore):
    @tracer.capture_method(capture_response=False)
    def list_segments(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID, kind: SegmentKind | None,
                      enabled: bool | None, page: PageRequest) -> Page[SegmentOut]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            self._document(conn, tenant_id, kb_id, document_id)
            rows, total = repo.list_segments(conn, tenant_id, document_id, kind, enabled, page)
        return Page.of([segment_out(r) for r in rows], page, total)

    def _embed_one(self, tenant_id: uuid.UUID, kb: dict[str, Any], text: str) -> tuple[list[float], int]:
        _, spec = self._embedding_spec(tenant_id, kb["embedding_model"], "knowledge_base.embedding_model")
        tokens = self._d.token_counter(spec).count([text])[0]
        if tokens > spec.max_input_tokens:
            raise field_error("body.text", f"The text has {tokens} tokens; embedding model {spec.name} takes at "
                                           f"most {spec.max_input_tokens}", "segment_too_long")
        result = self._d.gateway().embed(tenant_id, [text], kb["embedding_model"])
        return result.vectors[0], tokens

    @tracer.capture_method(capture_response=False)
    def create_segment(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID,
                       body: CreateSegment) -> SegmentOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            kb = self._knowledge_base(conn, tenant_id, kb_id)
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

    @tracer.capture_method(capture_response=False)
    def update_segment(self, principal: Principal, kb_id: uuid.UUID, document_id: uuid.UUID,
                       seg_id: uuid.UUID, body: UpdateSegment) -> SegmentOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            kb = self._knowledge_base(conn, tenant_id, kb_id)
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
                _, spec = self._embedding_spec(tenant_id, kb["embedding_model"], "knowledge_base.embedding_model")
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
                        row["enabled"], document_indexed=document["status"] == "indexed")])
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
