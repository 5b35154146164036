"""What the knowledge domain offers the others (chat today, workflow nodes next): a search over
knowledge bases, in domain terms. No HTTP shapes and nothing about who asks beyond the tenant:
the callers (a chat turn, a knowledge-retrieval node, the retrieve API) translate their own
inputs into a :class:`RetrievalQuery`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import Field

from shared.models.spec import NAME_PATTERN
from shared.validation import RequestModel

RetrievalMode = Literal["semantic", "full_text", "hybrid"]
# What a passage's score is (shared/knowledge/fusion.py, docs/adr/0031-calibrated-hybrid-scores.md):
# cosine similarity (semantic), the share of the query's terms found (keyword, full-text mode),
# their weighted sum (hybrid), the reranker's relevance (rerank). Each is absolute: comparable
# across queries, and results are ordered by it.
ScoreType = Literal["cosine", "keyword", "hybrid", "rerank"]


class RetrievalSettings(RequestModel):
    """Retrieval defaults, as a knowledge base (and an agent's knowledge settings) store them;
    a query may override each."""

    mode: RetrievalMode = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    # Applies to the score of the mode (ScoreType): the same bar means the same for every query.
    score_threshold: float | None = Field(default=None, ge=0, le=1)
    # Hybrid: weight of the cosine in the score (the keyword score gets 1 - weight).
    semantic_weight: float = Field(default=0.5, ge=0, le=1)
    # Rerank the fused candidates with this model (a model with the rerank capability).
    rerank_model: str | None = Field(default=None, pattern=NAME_PATTERN)


@dataclass(frozen=True)
class RetrievalFilter:
    """Documents to search: metadata equal to each value (a list: any of its values), carrying
    every tag, among ``document_ids`` when given."""

    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()
    document_ids: Sequence[uuid.UUID] = ()


@dataclass(frozen=True)
class Rerank:
    """Rerank the fused candidates. ``model`` None: the knowledge base's rerank model, else the
    tenant's default; ``candidates`` None: as many as the search draws."""

    model: str | None = None
    candidates: int | None = None


@dataclass(frozen=True)
class RetrievalQuery:
    """A search. Each setting left None takes the knowledge base's own (one knowledge base) or
    the platform's (several)."""

    knowledge_base_ids: Sequence[uuid.UUID]
    text: str
    mode: RetrievalMode | None = None
    top_k: int | None = None
    # Applies to the score of the mode (see RetrievedPassage.score).
    score_threshold: float | None = None
    # Hybrid: weight of the cosine in the score (the keyword score gets 1 - weight).
    semantic_weight: float | None = None
    rerank: Rerank | None = None
    filters: RetrievalFilter | None = None
    # Knowledge bases deleted or being deleted are left out instead of failing the search (an
    # agent's, or a workflow's, may have gone since it was published).
    skip_unavailable: bool = False


@dataclass(frozen=True)
class RetrievedPassage:
    """A matched segment. ``content`` is what to give a model: the parent segment's text under
    parent-child chunking, else ``text``. ``score`` is the mode's score (``score_type``:
    cosine, keyword, hybrid or rerank), and ``scores`` its parts by score type."""

    segment_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    document_id: uuid.UUID
    document_name: str
    position: int
    page: int | None
    text: str
    content: str
    score: float
    score_type: ScoreType
    scores: dict[str, float]
    metadata: dict[str, Any]
    tags: list[str]


@dataclass(frozen=True)
class Retrieval:
    """The passages found, best first, with the settings the search actually used."""

    query: str
    mode: RetrievalMode
    reranked: bool
    passages: list[RetrievedPassage]


class Retriever(Protocol):
    def retrieve(self, tenant_id: uuid.UUID, query: RetrievalQuery) -> Retrieval:
        """Search the tenant's named knowledge bases. Raises ``KnowledgeBaseNotFound`` for an
        id the tenant does not have and ``Conflict`` for one being deleted (unless
        ``skip_unavailable``)."""
        ...
