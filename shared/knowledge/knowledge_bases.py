"""Knowledge-base use cases: create (its embedding model and chunking checked), list, read,
update, and delete (the removal of its documents, vectors and files runs in the background)."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.errors import UniqueViolation

from shared.auth.principal import Principal
from shared.db.paging import Page, PageRequest
from shared.errors import Conflict
from shared.ids import new_id
from shared.knowledge import repository as repo
from shared.knowledge.api import CreateKnowledgeBase, KnowledgeBaseOut, RetrievalSettings, UpdateKnowledgeBase
from shared.knowledge.errors import KnowledgeBaseNameTaken
from shared.knowledge.service import KnowledgeCore
from shared.knowledge.storage import Executions
from shared.knowledge.types import ChunkingConfig
from shared.models.spec import ModelSpec
from shared.observability import tracer


def default_chunking(spec: ModelSpec) -> ChunkingConfig:
    """Segments that fit the model: 500 tokens (as Dify) or 80 % of a smaller model's input limit."""
    size = max(32, min(500, int(spec.max_input_tokens * 0.8)))
    return ChunkingConfig(chunk_size=size, chunk_overlap=size // 10)


def knowledge_base_out(row: dict[str, Any]) -> KnowledgeBaseOut:
    return KnowledgeBaseOut(id=row["id"], name=row["name"], description=row["description"],
                            embedding_model=row["embedding_model"], dimensions=row["dimensions"],
                            chunking=ChunkingConfig.model_validate(row["chunking"]),
                            retrieval=RetrievalSettings.model_validate(row["retrieval"]), status=row["status"],
                            document_count=row["document_count"], segment_count=row["segment_count"],
                            created_at=row["created_at"], updated_at=row["updated_at"], version=row["version"])


class KnowledgeBaseService(KnowledgeCore):
    @tracer.capture_method(capture_response=False)
    def create_knowledge_base(self, principal: Principal, body: CreateKnowledgeBase) -> KnowledgeBaseOut:
        tenant_id = principal.tenant
        model_name, spec = self._embedding_spec(tenant_id, body.embedding_model, "body.embedding_model")
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
        return knowledge_base_out(row)

    @tracer.capture_method(capture_response=False)
    def list_knowledge_bases(self, principal: Principal, page: PageRequest,
                             name: str | None = None) -> Page[KnowledgeBaseOut]:
        """``name``: only those whose name contains it, ignoring case."""
        with self._db.transaction(principal.tenant) as conn:
            rows, total = repo.list_knowledge_bases(conn, principal.tenant, page, name)
        return Page.of([knowledge_base_out(r) for r in rows], page, total)

    @tracer.capture_method(capture_response=False)
    def get_knowledge_base(self, principal: Principal, kb_id: uuid.UUID) -> KnowledgeBaseOut:
        with self._db.transaction(principal.tenant) as conn:
            return knowledge_base_out(self._knowledge_base(conn, principal.tenant, kb_id, active=False))

    @tracer.capture_method(capture_response=False)
    def update_knowledge_base(self, principal: Principal, kb_id: uuid.UUID,
                              body: UpdateKnowledgeBase) -> KnowledgeBaseOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            current = self._knowledge_base(conn, tenant_id, kb_id)
        values: dict[str, Any] = {}
        if body.name is not None:
            values["name"] = body.name
        if body.description is not None:
            values["description"] = body.description
        model_name, spec = current["embedding_model"], None
        if body.embedding_model is not None and body.embedding_model.lower() != current["embedding_model"].lower():
            model_name, spec = self._embedding_spec(tenant_id, body.embedding_model, "body.embedding_model")
            assert spec.dimensions is not None
            values.update(embedding_model=model_name, dimensions=spec.dimensions)
        if body.chunking is not None or spec is not None:
            if spec is None:
                _, spec = self._embedding_spec(tenant_id, current["embedding_model"], "body.chunking")
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
                row = self._knowledge_base(conn, tenant_id, kb_id, active=False)
        except UniqueViolation as exc:
            raise KnowledgeBaseNameTaken(details={"name": body.name}) from exc
        return knowledge_base_out(row)

    @tracer.capture_method(capture_response=False)
    def delete_knowledge_base(self, principal: Principal, kb_id: uuid.UUID) -> KnowledgeBaseOut:
        """Mark it deleting and start the removal of its documents, vectors and files; GET
        shows "deleting" until it is gone (then 404)."""
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            self._knowledge_base(conn, tenant_id, kb_id, active=False)
            arn = self._d.settings.knowledge_base_delete_state_machine_arn
            if not arn:
                raise RuntimeError("KNOWLEDGE_BASE_DELETE_STATE_MACHINE_ARN is not set")
            repo.mark_knowledge_base_deleting(conn, tenant_id, kb_id)
            row = self._knowledge_base(conn, tenant_id, kb_id, active=False)
        # Started after the commit (the state machine must see "deleting"); a repeated DELETE
        # names the same execution, so it starts once.
        executions: Executions = self._d.executions()
        executions.start(arn, f"kb-delete-{kb_id}", {"tenant_id": str(tenant_id), "knowledge_base_id": str(kb_id)},
                         restart=True)
        return knowledge_base_out(row)
