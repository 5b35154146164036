"""Retrieval over one or several knowledge bases: semantic, full-text or hybrid (reciprocal
rank fusion), optionally reranked. Only the caller's tenant and the named knowledge bases are
searched: the store filters on both, and the ids are checked against the tenant first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from shared.auth.principal import Principal
from shared.errors import Conflict
from shared.knowledge import repository as repo
from shared.knowledge.api import RetrievalSettings, RetrievedSegment, RetrieveRequest, RetrieveResult
from shared.knowledge.errors import KnowledgeBaseNotFound
from shared.knowledge.service import KnowledgeDeps
from shared.knowledge.vectorstore.ports import Hit, SearchFilter, VectorStore

# Every search draws this many candidates per top_k from each ranking.
_CANDIDATE_FACTOR = 4
_MIN_CANDIDATES = 20
_MAX_CANDIDATES = 100


class RetrievalService:
    def __init__(self, deps: KnowledgeDeps) -> None:
        self._d = deps
        self._db = deps.db

    def retrieve(self, principal: Principal, kb_ids: Sequence[uuid.UUID], body: RetrieveRequest, *,
                 skip_unavailable: bool = False) -> RetrieveResult:
        """``skip_unavailable``: knowledge bases deleted or being deleted are left out instead
        of failing the search (an agent's bound ones may have gone since it was published)."""
        tenant_id = principal.tenant
        unique_ids = list(dict.fromkeys(kb_ids))
        with self._db.transaction(tenant_id) as conn:
            kbs = repo.get_knowledge_bases(conn, tenant_id, unique_ids)
        if skip_unavailable:
            kbs = [kb for kb in kbs if kb["status"] == "active"]
            unique_ids = [i for i in unique_ids if any(kb["id"] == i for kb in kbs)]
            if not unique_ids:
                return RetrieveResult(query=body.query, mode=body.mode or RetrievalSettings().mode, reranked=False,
                                      items=[])
        found = {kb["id"]: kb for kb in kbs}
        missing = [str(i) for i in unique_ids if i not in found]
        if missing:
            raise KnowledgeBaseNotFound(details={"knowledge_base_ids": missing})
        deleting = [str(kb["id"]) for kb in kbs if kb["status"] != "active"]
        if deleting:
            raise Conflict("A knowledge base is being deleted", code="knowledge_base_deleting",
                           details={"knowledge_base_ids": deleting})
        # One knowledge base: its own defaults; several: the platform's.
        defaults = RetrievalSettings.model_validate(found[unique_ids[0]]["retrieval"]) if len(unique_ids) == 1 \
            else RetrievalSettings()
        mode = body.mode or defaults.mode
        top_k = body.top_k or defaults.top_k
        threshold = body.score_threshold if body.score_threshold is not None else defaults.score_threshold
        weight = body.semantic_weight if body.semantic_weight is not None else defaults.semantic_weight
        rerank_model = (body.rerank.model if body.rerank else None) or defaults.rerank_model
        rerank = body.rerank is not None or rerank_model is not None
        search_filter = None
        if body.filters is not None:
            search_filter = SearchFilter(metadata=dict(body.filters.metadata), tags=list(body.filters.tags),
                                         document_ids=list(body.filters.document_ids))
        # Always more candidates than top_k: fusion and reranking need them, and under
        # parent-child chunking several children of one parent collapse into one result.
        candidates = min(_MAX_CANDIDATES, max(top_k * _CANDIDATE_FACTOR, _MIN_CANDIDATES))
        if body.rerank and body.rerank.candidates:
            candidates = max(top_k, body.rerank.candidates)

        store: VectorStore = self._d.store()
        semantic: list[Hit] = []
        full_text: list[Hit] = []
        if mode in ("semantic", "hybrid"):
            semantic = self._semantic(tenant_id, kbs, body.query, candidates, search_filter, store)
        if mode in ("full_text", "hybrid"):
            full_text = store.search_full_text(tenant_id, unique_ids, body.query, candidates, search_filter)
        ranked = self._rank(mode, semantic, full_text, weight)

        with self._db.transaction(tenant_id) as conn:
            rows = repo.segments_for_hits(conn, tenant_id, [item["segment_id"] for item in ranked])
        items: list[RetrievedSegment] = []
        seen_content: set[uuid.UUID] = set()
        for item in ranked:
            row = rows.get(item["segment_id"])
            if row is None:  # disabled or deleted since it was indexed
                continue
            # Parent-child: children of one parent return it once, at its best child's rank.
            content_key = row["parent_id"] or row["id"]
            if content_key in seen_content:
                continue
            seen_content.add(content_key)
            items.append(RetrievedSegment(
                segment_id=row["id"], knowledge_base_id=row["knowledge_base_id"], document_id=row["document_id"],
                document_name=row["document_name"], position=row["position"], page=row["page"], text=row["text"],
                content=row["parent_text"] or row["text"], score=item["score"], score_type=item["score_type"],
                scores=item["scores"], metadata=row["metadata"], tags=row["tags"]))
        reranked = False
        if rerank and items:
            items = self._rerank(tenant_id, body.query, items, rerank_model, top_k)
            reranked = True
        if threshold is not None:
            items = [item for item in items if item.score >= threshold]
        return RetrieveResult(query=body.query, mode=mode, reranked=reranked, items=items[:top_k])

    def _semantic(self, tenant_id: uuid.UUID, kbs: list[dict[str, Any]], query: str, top_k: int,
                  search_filter: SearchFilter | None, store: VectorStore) -> list[Hit]:
        """Knowledge bases sharing an embedding model are searched together, with one query
        vector; results of different models merge by cosine."""
        groups: dict[tuple[str, int], list[uuid.UUID]] = {}
        for kb in kbs:
            groups.setdefault((kb["embedding_model"], kb["dimensions"]), []).append(kb["id"])
        gateway = self._d.gateway()
        hits: list[Hit] = []
        for (model, dimensions), ids in groups.items():
            vector = gateway.embed(tenant_id, [query], model).vectors[0]
            hits.extend(store.search_semantic(tenant_id, ids, dimensions, vector, top_k, search_filter))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:top_k]

    @staticmethod
    def _rank(mode: str, semantic: list[Hit], full_text: list[Hit], weight: float) -> list[dict[str, Any]]:
        best_text = max((h.score for h in full_text), default=0.0)

        def text_score(hit: Hit) -> float:
            return hit.score / best_text if best_text > 0 else 0.0

        if mode == "semantic":
            return [{"segment_id": h.segment_id, "score": h.score, "score_type": "cosine",
                     "scores": {"semantic": h.score}} for h in semantic]
        if mode == "full_text":
            return [{"segment_id": h.segment_id, "score": round(text_score(h), 6), "score_type": "full_text",
                     "scores": {"full_text": round(text_score(h), 6)}} for h in full_text]
        from shared.knowledge.fusion import reciprocal_rank_fusion

        by_semantic = {h.segment_id: h.score for h in semantic}
        by_text = {h.segment_id: text_score(h) for h in full_text}
        fused = reciprocal_rank_fusion([semantic, full_text], weights=[weight, 1.0 - weight])
        ranked = []
        for hit in fused:
            scores = {"rrf": hit.rrf}
            if hit.segment_id in by_semantic:
                scores["semantic"] = by_semantic[hit.segment_id]
            if hit.segment_id in by_text:
                scores["full_text"] = round(by_text[hit.segment_id], 6)
            ranked.append({"segment_id": hit.segment_id, "score": hit.score, "score_type": "hybrid",
                           "scores": scores})
        return ranked

    def _rerank(self, tenant_id: uuid.UUID, query: str, items: list[RetrievedSegment], model: str | None,
                top_k: int) -> list[RetrievedSegment]:
        _, results = self._d.gateway().rerank(tenant_id, query, [item.content for item in items], model, top_k)
        reranked = []
        for result in results:
            item = items[result.index]
            reranked.append(item.model_copy(update={
                "score": result.score, "score_type": "rerank",
                "scores": {**item.scores, item.score_type if item.score_type != "cosine" else "semantic": item.score,
                           "rerank": result.score}}))
        return reranked
