"""The vector-store port. PostgreSQL remains the source of truth for segments (text,
status, positions); a vector store holds what search needs: the vector, the searchable
text, and the fields every query filters on (tenant, knowledge base, document metadata
and tags, enabled). Every call names the tenant explicitly and adapters filter on it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

JsonScalar = str | int | float | bool


@dataclass(frozen=True)
class IndexedSegment:
    segment_id: uuid.UUID
    document_id: uuid.UUID
    text: str
    vector: Sequence[float]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()
    enabled: bool = True
    # False while its document is being indexed (embedding batches): only indexed documents
    # are searched. Stores that read the document's status themselves ignore it.
    document_indexed: bool = True


@dataclass(frozen=True)
class SearchFilter:
    """Segments match when every ``metadata`` key equals the given value (a list value:
    equals any of them) and the document carries every one of ``tags``. ``document_ids``
    narrows to those documents. Disabled segments, and segments of documents that are not
    ``indexed`` (embedding, failed, re-indexing), never match."""

    metadata: Mapping[str, JsonScalar | list[JsonScalar]] = field(default_factory=dict)
    tags: Sequence[str] = ()
    document_ids: Sequence[uuid.UUID] = ()

    @property
    def empty(self) -> bool:
        return not self.metadata and not self.tags and not self.document_ids


@dataclass(frozen=True)
class Hit:
    segment_id: uuid.UUID
    document_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    # semantic: cosine similarity in [-1, 1] (1 - cosine distance); full_text: the engine's
    # relevance (ts_rank_cd or BM25), unbounded, comparable only within one query: it orders
    # candidates, retrieval reports its own keyword score (shared/knowledge/fusion.py).
    score: float
    score_type: Literal["cosine", "full_text"]


class VectorStore(Protocol):
    name: str

    def ensure_index(self, dimensions: int) -> None:
        """Create what searching vectors of this size needs (idempotent, cheap when done)."""
        ...

    def upsert(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, dimensions: int,
               segments: Sequence[IndexedSegment]) -> None:
        """Insert or replace segments by id (a retried batch writes the same rows again)."""
        ...

    def delete_segments(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID,
                        segment_ids: Sequence[uuid.UUID]) -> None: ...

    def delete_document(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, document_id: uuid.UUID) -> None: ...

    def delete_knowledge_base(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID) -> None: ...

    def set_enabled(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, segment_ids: Sequence[uuid.UUID],
                    enabled: bool) -> None: ...

    def update_document_fields(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, document_id: uuid.UUID,
                               metadata: Mapping[str, Any], tags: Sequence[str]) -> None:
        """A document's metadata or tags changed: every one of its segments filters by the new values."""
        ...

    def set_document_indexed(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, document_id: uuid.UUID,
                             indexed: bool) -> None:
        """The document became ``indexed`` (or left that status: re-indexed, failed). Searches
        return only indexed documents' segments: PostgreSQL reads the status from ``documents``
        (nothing to do), OpenSearch keeps a copy on each segment."""
        ...

    def search_semantic(self, tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID], dimensions: int,
                        vector: Sequence[float], top_k: int, search_filter: SearchFilter | None = None) -> list[Hit]:
        """Nearest segments by cosine similarity, best first; ``top_k`` results whenever that
        many match the filter (iterative index scans / k-NN filtering, not post-filtering)."""
        ...

    def search_full_text(self, tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID], query: str,
                         top_k: int, search_filter: SearchFilter | None = None) -> list[Hit]:
        """Keyword relevance (any query term may match), best first; CJK text is segmented."""
        ...

    def similarities(self, tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID], dimensions: int,
                     vector: Sequence[float], segment_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, float]:
        """Cosine similarity of ``vector`` to each of these segments, as ``search_semantic``
        scores it, computed exactly: hybrid search scores the segments only the keyword ranking
        found. Segments of other tenants or knowledge bases, of another size, or gone are left
        out."""
        ...
