"""Retrieval settings resolution: the query's overrides over the knowledge base's defaults (one
knowledge base) or the platform's (several), the candidate pool, and which knowledge bases are
searched or refused. Pure: rows in, a plan out."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.errors import Conflict
from shared.knowledge.contract import Rerank, RetrievalFilter, RetrievalQuery
from shared.knowledge.errors import KnowledgeBaseNotFound
from shared.knowledge.retrieval import resolve_plan


def kb(retrieval: dict[str, Any] | None = None, *, status: str = "active", model: str = "embed",
       dimensions: int = 8) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "retrieval": retrieval or {}, "status": status, "embedding_model": model,
            "dimensions": dimensions}


def query(kbs: list[dict[str, Any]], **settings: Any) -> RetrievalQuery:
    return RetrievalQuery(knowledge_base_ids=[k["id"] for k in kbs], text="q", **settings)


def test_one_knowledge_base_uses_its_own_defaults() -> None:
    only = kb({"mode": "semantic", "top_k": 7, "score_threshold": 0.3, "semantic_weight": 0.8,
               "rerank_model": "ranker"})
    plan = resolve_plan(query([only]), [only])
    assert (plan.mode, plan.top_k, plan.score_threshold, plan.semantic_weight) == ("semantic", 7, 0.3, 0.8)
    assert plan.rerank and plan.rerank_model == "ranker"
    assert plan.knowledge_base_ids == [only["id"]] and plan.search_filter is None


def test_several_knowledge_bases_use_the_platform_defaults() -> None:
    first, second = kb({"mode": "semantic", "top_k": 9}), kb({"mode": "full_text"})
    plan = resolve_plan(query([first, second]), [first, second])
    assert (plan.mode, plan.top_k, plan.score_threshold, plan.semantic_weight) == ("hybrid", 5, None, 0.5)
    assert not plan.rerank and plan.rerank_model is None


def test_the_query_overrides_each_setting() -> None:
    only = kb({"mode": "semantic", "top_k": 7, "score_threshold": 0.3, "semantic_weight": 0.8})
    plan = resolve_plan(query([only], mode="full_text", top_k=2, score_threshold=0.0, semantic_weight=0.0,
                              filters=RetrievalFilter(metadata={"lang": "en"}, tags=["a"])), [only])
    # Zero is a setting, not "unset".
    assert (plan.mode, plan.top_k, plan.score_threshold, plan.semantic_weight) == ("full_text", 2, 0.0, 0.0)
    assert plan.search_filter is not None and dict(plan.search_filter.metadata) == {"lang": "en"}
    assert list(plan.search_filter.tags) == ["a"]


def test_candidates_scale_with_top_k_within_bounds() -> None:
    only = kb()
    assert resolve_plan(query([only], top_k=2), [only]).candidates == 20
    assert resolve_plan(query([only], top_k=10), [only]).candidates == 40
    assert resolve_plan(query([only], top_k=60), [only]).candidates == 100
    # A rerank asking for its own pool gets it, never fewer than top_k.
    assert resolve_plan(query([only], top_k=10, rerank=Rerank(candidates=15)), [only]).candidates == 15
    assert resolve_plan(query([only], top_k=10, rerank=Rerank(candidates=3)), [only]).candidates == 10


def test_rerank_is_on_when_asked_or_when_the_knowledge_base_names_a_model() -> None:
    plain, ranked = kb(), kb({"rerank_model": "kb-ranker"})
    asked = resolve_plan(query([plain], rerank=Rerank()), [plain])
    assert asked.rerank and asked.rerank_model is None
    by_default = resolve_plan(query([ranked]), [ranked])
    assert by_default.rerank and by_default.rerank_model == "kb-ranker"
    named = resolve_plan(query([ranked], rerank=Rerank(model="mine")), [ranked])
    assert named.rerank_model == "mine"


def test_knowledge_bases_sharing_a_model_are_grouped() -> None:
    a, b, c = kb(model="m1", dimensions=4), kb(model="m2", dimensions=8), kb(model="m1", dimensions=4)
    plan = resolve_plan(query([a, b, c, a]), [a, b, c])
    assert plan.embedding_groups == {("m1", 4): [a["id"], c["id"]], ("m2", 8): [b["id"]]}
    assert plan.knowledge_base_ids == [a["id"], b["id"], c["id"]]  # repeats searched once


def test_missing_and_deleting_knowledge_bases_are_refused() -> None:
    live, going = kb(), kb(status="deleting")
    absent = uuid.uuid4()
    with pytest.raises(KnowledgeBaseNotFound) as missing:
        resolve_plan(RetrievalQuery(knowledge_base_ids=[live["id"], absent], text="q"), [live])
    assert missing.value.details == {"knowledge_base_ids": [str(absent)]}
    with pytest.raises(Conflict) as deleting:
        resolve_plan(query([live, going]), [live, going])
    assert deleting.value.code == "knowledge_base_deleting"


def test_unavailable_knowledge_bases_can_be_skipped() -> None:
    live, going = kb({"mode": "semantic"}), kb(status="deleting")
    ids = [uuid.uuid4(), going["id"], live["id"]]
    plan = resolve_plan(RetrievalQuery(knowledge_base_ids=ids, text="q", skip_unavailable=True), [live, going])
    # One left: its own defaults apply.
    assert plan.knowledge_base_ids == [live["id"]] and plan.mode == "semantic"
    assert plan.embedding_groups == {("embed", 8): [live["id"]]}
    none_left = resolve_plan(RetrievalQuery(knowledge_base_ids=ids[:2], text="q", mode="full_text",
                                            skip_unavailable=True), [going])
    assert none_left.knowledge_base_ids == [] and none_left.mode == "full_text"
