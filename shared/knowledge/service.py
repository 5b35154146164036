"""What the knowledge services share: their ports (:class:`KnowledgeDeps`) and
:class:`KnowledgeCore`, the look-ups and checks every aggregate's service makes. The use cases
are split by aggregate: :mod:`shared.knowledge.knowledge_bases`, :mod:`shared.knowledge.documents`
and :mod:`shared.knowledge.segments`; indexing runs in :mod:`shared.knowledge.ingestion`,
search in :mod:`shared.knowledge.retrieval`."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.config import Settings
from shared.db.database import Database
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.knowledge import repository as repo
from shared.knowledge.errors import DocumentNotFound, KnowledgeBaseNotFound
from shared.knowledge.storage import DocumentFiles
from shared.knowledge.types import ChunkingConfig, TokenCounter
from shared.knowledge.vectorstore.ports import VectorStore
from shared.models.spec import Capability, ModelSpec

Provider = Callable[[], Any]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def field_error(field: str, message: str, code: str = "biz_validation_failed") -> ValidationFailed:
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


class KnowledgeCore:
    """Ports and look-ups shared by the knowledge-base, document and segment services."""

    def __init__(self, deps: KnowledgeDeps) -> None:
        self._d = deps
        self._db = deps.db

    def _store(self) -> VectorStore:
        store: VectorStore = self._d.store()
        return store

    def _files(self) -> DocumentFiles:
        files: DocumentFiles = self._d.files()
        return files

    def _embedding_spec(self, tenant_id: uuid.UUID, name: str | None, field: str) -> tuple[str, ModelSpec]:
        """The embedding model by name (or the default), checked for use; a 422 naming ``field``."""
        from shared.models.errors import ModelNotConfigured

        try:
            target = self._d.gateway().target(tenant_id, name, Capability.EMBEDDING)
        except NotFound as exc:
            raise field_error(field, exc.message, "model_not_found") from exc
        except ModelNotConfigured as exc:
            raise field_error(field, exc.message, exc.code) from exc
        return target.model.name, target.spec

    def _check_chunking(self, config: ChunkingConfig, spec: ModelSpec, field: str) -> None:
        from shared.knowledge.tokens import validate_chunking

        # The model's limit counts its special tokens; the chunker's counts do not.
        validate_chunking(config, spec, field=f"{field}.chunk_size")

    def _knowledge_base(self, conn: Any, tenant_id: uuid.UUID, kb_id: uuid.UUID, *,
                        active: bool = True) -> dict[str, Any]:
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
