"""Retrieval over one or several knowledge bases: semantic, full-text or hybrid (a weighted sum
of cosine and keyword scores, docs/adr/0031-calibrated-hybrid-scores.md), optionally reranked.
Only the caller's tenant and the named knowledge bases are searched: the store filters on both,
and the ids are checked against the tenant first.

A search is three steps: the settings are resolved into a :class:`RetrievalPlan` (pure: the
query's overrides over the knowledge base's defaults), the store is searched for candidates,
then the candidates are scored, ordered and hydrated into passages (reranked and cut to
``top_k``). The service is the knowledge domain's :class:`~shared.knowledge.contract.Retriever`."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.errors import Conflict
from shared.knowledge.api import RetrievedSegment, RetrieveRequest, RetrieveResult
from shared.knowledge.contract import (
    Rerank,
    Retrieval,
    RetrievalFilter,
    RetrievalMode,
    RetrievalQuery,
    RetrievalSettings,
    RetrievedPassage,
)
from shared.knowledge.errors import KnowledgeBaseNotFound
from shared.knowledge.vectorstore.ports import Hit, SearchFilter, VectorStore
from shared.observability import tracer

if TYPE_CHECKING:
    # Imported where used: the retrieve handlers import this module for its request mapping.
    from shared.knowledge.service import KnowledgeDeps

# Every search draws this many candidates per top_k from each ranking.
_CANDIDATE_FACTOR = 4
_MIN_CANDIDATES = 20
_MAX_CANDIDATES = 100


@dataclass
class Candidates:
    """What a search found, before scoring: each ranking best first (the engines' relevance),
    and, in hybrid mode, the cosine of the segments only the keyword ranking found."""

    semantic: list[Hit] = field(default_factory=list)
    full_text: list[Hit] = field(default_factory=list)
    cosines: dict[uuid.UUID, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrievalPlan:
    """A search with every setting resolved. ``knowledge_base_ids`` empty: nothing left to
    search (every knowledge base was unavailable and skipped)."""

    knowledge_base_ids: list[uuid.UUID]
    # Knowledge bases sharing an embedding model are searched with one query vector.
    embedding_groups: dict[tuple[str, int], list[uuid.UUID]]
    mode: RetrievalMode
    top_k: int
    score_threshold: float | None
    semantic_weight: float
    rerank: bool
    rerank_model: str | None
    candidates: int
    search_filter: SearchFilter | None


def resolve_plan(query: RetrievalQuery, knowledge_bases: Sequence[Mapping[str, Any]]) -> RetrievalPlan:
    """The settings of a search, from the query and the rows of the knowledge bases it names
    (those the tenant has: a missing id has no row). Raises for a missing or deleting one,
    unless the query skips unavailable ones."""
    unique_ids = list(dict.fromkeys(query.knowledge_base_ids))
    kbs = list(knowledge_bases)
    if query.skip_unavailable:
        kbs = [kb for kb in kbs if kb["status"] == "active"]
        active = {kb["id"] for kb in kbs}
        unique_ids = [i for i in unique_ids if i in active]
    found = {kb["id"]: kb for kb in kbs}
    missing = [str(i) for i in unique_ids if i not in found]
    if missing:
        raise KnowledgeBaseNotFound(details={"knowledge_base_ids": missing})
    deleting = [str(kb["id"]) for kb in kbs if kb["status"] != "active"]
    if deleting:
        raise Conflict("A knowledge base is being deleted", code="knowledge_base_deleting",
                       details={"knowledge_base_ids": deleting})
    # One knowledge base: its own defaults; several (or none left): the platform's.
    defaults = RetrievalSettings.model_validate(found[unique_ids[0]]["retrieval"]) if len(unique_ids) == 1 \
        else RetrievalSettings()
    top_k = query.top_k or defaults.top_k
    rerank_model = (query.rerank.model if query.rerank else None) or defaults.rerank_model
    # Always more candidates than top_k: fusion and reranking need them, and under
    # parent-child chunking several children of one parent collapse into one result.
    candidates = min(_MAX_CANDIDATES, max(top_k * _CANDIDATE_FACTOR, _MIN_CANDIDATES))
    if query.rerank and query.rerank.candidates:
        candidates = max(top_k, query.rerank.candidates)
    groups: dict[tuple[str, int], list[uuid.UUID]] = {}
    for kb in kbs:
        groups.setdefault((kb["embedding_model"], kb["dimensions"]), []).append(kb["id"])
    filters = query.filters
    return RetrievalPlan(
        knowledge_base_ids=unique_ids, embedding_groups=groups, mode=query.mode or defaults.mode, top_k=top_k,
        score_threshold=query.score_threshold if query.score_threshold is not None else defaults.score_threshold,
        semantic_weight=query.semantic_weight if query.semantic_weight is not None else defaults.semantic_weight,
        rerank=query.rerank is not None or rerank_model is not None, rerank_model=rerank_model,
        candidates=candidates,
        search_filter=None if filters is None else SearchFilter(
            metadata=dict(filters.metadata), tags=list(filters.tags), document_ids=list(filters.document_ids)))


class RetrievalService:
    def __init__(self, deps: KnowledgeDeps) -> None:
        self._d = deps
        self._db = deps.db

    @tracer.capture_method(capture_response=False)
    def retrieve(self, tenant_id: uuid.UUID, query: RetrievalQuery) -> Retrieval:
        from shared.knowledge import repository as repo

        with self._db.transaction(tenant_id) as conn:
            kbs = repo.get_knowledge_bases(conn, tenant_id, list(dict.fromkeys(query.knowledge_base_ids)))
        plan = resolve_plan(query, kbs)
        if not plan.knowledge_base_ids:
            return Retrieval(query=query.text, mode=plan.mode, reranked=False, passages=[])
        passages = self._score_and_hydrate(tenant_id, plan, query.text, self._search(tenant_id, plan, query.text))
        reranked = False
        if plan.rerank and passages:
            passages = self._rerank(tenant_id, query.text, passages, plan.rerank_model, plan.top_k)
            reranked = True
        if plan.score_threshold is not None:
            passages = [p for p in passages if p.score >= plan.score_threshold]
        return Retrieval(query=query.text, mode=plan.mode, reranked=reranked, passages=passages[:plan.top_k])

    # Search ------------------------------------------------------------------------------------
    def _search(self, tenant_id: uuid.UUID, plan: RetrievalPlan, text: str) -> Candidates:
        store: VectorStore = self._d.store()
        candidates = Candidates()
        vectors: dict[tuple[str, int], list[float]] = {}
        if plan.mode in ("semantic", "hybrid"):
            candidates.semantic, vectors = self._semantic(tenant_id, plan, text, store)
        if plan.mode in ("full_text", "hybrid"):
            candidates.full_text = store.search_full_text(tenant_id, plan.knowledge_base_ids, text, plan.candidates,
                                                          plan.search_filter)
        if plan.mode == "hybrid":
            candidates.cosines = self._missing_cosines(tenant_id, plan, store, vectors, candidates)
        return candidates

    def _semantic(self, tenant_id: uuid.UUID, plan: RetrievalPlan, text: str,
                  store: VectorStore) -> tuple[list[Hit], dict[tuple[str, int], list[float]]]:
        """One query vector per embedding model; results of different models merge by cosine.
        Returns the hits and the query vector of each model."""
        gateway = self._d.gateway()
        hits: list[Hit] = []
        vectors: dict[tuple[str, int], list[float]] = {}
        for (model, dimensions), ids in plan.embedding_groups.items():
            vector = vectors[(model, dimensions)] = gateway.embed(tenant_id, [text], model).vectors[0]
            hits.extend(store.search_semantic(tenant_id, ids, dimensions, vector, plan.candidates,
                                              plan.search_filter))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:plan.candidates], vectors

    @staticmethod
    def _missing_cosines(tenant_id: uuid.UUID, plan: RetrievalPlan, store: VectorStore,
                         vectors: Mapping[tuple[str, int], list[float]],
                         candidates: Candidates) -> dict[uuid.UUID, float]:
        """The cosine of the segments only the keyword ranking found: a hybrid score has both
        parts for every candidate (ADR 0031). One lookup by id per embedding model."""
        found = {h.segment_id for h in candidates.semantic}
        missing = [h for h in candidates.full_text if h.segment_id not in found]
        cosines: dict[uuid.UUID, float] = {}
        for (model, dimensions), ids in plan.embedding_groups.items():
            group = set(ids)
            segment_ids = [h.segment_id for h in missing if h.knowledge_base_id in group]
            if segment_ids:
                cosines.update(store.similarities(tenant_id, ids, dimensions, vectors[(model, dimensions)],
                                                  segment_ids))
        return cosines

    # Scoring and hydration ---------------------------------------------------------------------
    def _score_and_hydrate(self, tenant_id: uuid.UUID, plan: RetrievalPlan, text: str,
                           candidates: Candidates) -> list[RetrievedPassage]:
        """The candidates as passages, best score first (shared/knowledge/fusion.py); a segment
        disabled or deleted since it was indexed is left out, and children of one parent return
        it once, at its best child's place."""
        from shared.knowledge import repository as repo
        from shared.knowledge.fusion import score_candidates

        ids = list(dict.fromkeys(h.segment_id for h in [*candidates.semantic, *candidates.full_text]))
        if not ids:
            return []
        with self._db.transaction(tenant_id) as conn:
            rows = repo.segments_for_hits(conn, tenant_id, ids)
        scored = score_candidates(plan.mode, text, candidates.semantic, candidates.full_text,
                                  {segment_id: row["text"] for segment_id, row in rows.items()},
                                  plan.semantic_weight, candidates.cosines)
        passages: list[RetrievedPassage] = []
        seen_content: set[uuid.UUID] = set()
        for item in scored:
            row = rows[item.segment_id]
            content_key = row["parent_id"] or row["id"]
            if content_key in seen_content:
                continue
            seen_content.add(content_key)
            passages.append(RetrievedPassage(
                segment_id=row["id"], knowledge_base_id=row["knowledge_base_id"], document_id=row["document_id"],
                document_name=row["document_name"], position=row["position"], page=row["page"], text=row["text"],
                content=row["parent_text"] or row["text"], score=item.score, score_type=item.score_type,
                scores=dict(item.scores), metadata=row["metadata"], tags=row["tags"]))
        return passages

    def _rerank(self, tenant_id: uuid.UUID, text: str, passages: list[RetrievedPassage], model: str | None,
                top_k: int) -> list[RetrievedPassage]:
        _, results = self._d.gateway().rerank(tenant_id, text, [p.content for p in passages], model, top_k)
        reranked = []
        for result in results:
            passage = passages[result.index]
            reranked.append(dataclasses.replace(
                passage, score=result.score, score_type="rerank",
                scores={**passage.scores, passage.score_type: passage.score, "rerank": result.score}))
        return reranked


# The retrieve API's shapes ------------------------------------------------------------------------
def retrieval_query(body: RetrieveRequest, knowledge_base_ids: Sequence[uuid.UUID]) -> RetrievalQuery:
    """A retrieve request as the domain's query (the API never skips unavailable knowledge bases)."""
    filters = body.filters
    return RetrievalQuery(
        knowledge_base_ids=list(knowledge_base_ids), text=body.query, mode=body.mode, top_k=body.top_k,
        score_threshold=body.score_threshold, semantic_weight=body.semantic_weight,
        rerank=Rerank(model=body.rerank.model, candidates=body.rerank.candidates) if body.rerank else None,
        filters=None if filters is None else RetrievalFilter(
            metadata=dict(filters.metadata), tags=list(filters.tags), document_ids=list(filters.document_ids)))


def retrieve_result(retrieval: Retrieval) -> RetrieveResult:
    return RetrieveResult(query=retrieval.query, mode=retrieval.mode, reranked=retrieval.reranked,
                          items=[RetrievedSegment(**dataclasses.asdict(p)) for p in retrieval.passages])
