"""The scores retrieval reports, and how hybrid search fuses its two rankings
(docs/adr/0031-calibrated-hybrid-scores.md).

Every score is an absolute relevance: comparable across queries and knowledge bases, results
are ordered by it, and ``score_threshold`` applies to it. ``score_type`` names it:

- **cosine** (semantic mode): cosine similarity of the query and segment vectors, in [-1, 1]
  (1 - cosine distance; both vector stores report it so).
- **keyword** (full-text mode): :func:`keyword_score`, the share of the query's terms the
  segment contains, in [0, 1]. The engines' own relevance (PostgreSQL's ``ts_rank_cd``,
  OpenSearch's BM25) only chooses the candidates and breaks ties: it is unbounded, has a
  scale that depends on the engine, the corpus and the query's length, and no constant maps
  it to a bar that means the same for every query.
- **hybrid**: ``w * clamp(cosine, 0, 1) + (1 - w) * keyword`` with ``w`` the
  ``semantic_weight``, in [0, 1]. Each candidate either ranking found gets both parts: the
  keyword part is computed from its text, the cosine of a segment only the keyword ranking
  found is looked up in the store (0 if it is not there any more).

A reranker's score, when one runs, replaces these (``rerank``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from shared.knowledge.text import keyword_terms, search_text
from shared.knowledge.vectorstore.ports import Hit

FusedScoreType = Literal["cosine", "keyword", "hybrid"]


@dataclass(frozen=True)
class ScoredSegment:
    """A candidate with the score of the search's mode and its parts."""

    segment_id: uuid.UUID
    score: float
    score_type: FusedScoreType
    # The parts the score is made of, by score type: {"cosine": …, "keyword": …}.
    scores: dict[str, float] = field(default_factory=dict)


def keyword_score(terms: Sequence[str], text: str) -> float:
    """The share of ``terms`` (:func:`~shared.knowledge.text.keyword_terms` of the query) that
    occur in ``text``, tokenised as the index tokenises it: 1.0 when every term occurs, 0.0
    when none does (or there are no terms). How often a term occurs does not count."""
    if not terms:
        return 0.0
    present = set(search_text(text).split())
    return sum(1 for term in terms if term in present) / len(terms)


def hybrid_score(cosine: float | None, keyword: float, semantic_weight: float) -> float:
    """``w * clamp(cosine, 0, 1) + (1 - w) * keyword``; a cosine not known counts as 0."""
    similarity = min(1.0, max(0.0, cosine if cosine is not None else 0.0))
    return semantic_weight * similarity + (1.0 - semantic_weight) * min(1.0, max(0.0, keyword))


def score_candidates(mode: Literal["semantic", "full_text", "hybrid"], query: str, semantic: Sequence[Hit],
                     full_text: Sequence[Hit], texts: Mapping[uuid.UUID, str], semantic_weight: float = 0.5,
                     cosines: Mapping[uuid.UUID, float] | None = None) -> list[ScoredSegment]:
    """The candidates of the rankings the mode uses, scored for it and ordered by that score,
    best first. ``texts`` holds the text of every candidate still searchable: one missing
    (deleted or disabled since it was indexed) is left out. ``cosines``: the cosine of
    segments only the keyword ranking found (hybrid). Ties go to the better rank in either
    ranking (the engines' relevance), then the segment id, so the order is deterministic."""
    rank: dict[uuid.UUID, int] = {}
    cosine: dict[uuid.UUID, float] = dict(cosines or {})
    for ranking in ((semantic,) if mode == "semantic" else (full_text,) if mode == "full_text"
                    else (semantic, full_text)):
        for position, hit in enumerate(ranking, start=1):
            rank[hit.segment_id] = min(rank.get(hit.segment_id, position), position)
            if hit.score_type == "cosine":
                cosine[hit.segment_id] = max(hit.score, cosine.get(hit.segment_id, -1.0))
    terms = keyword_terms(query) if mode != "semantic" else []
    scored: list[ScoredSegment] = []
    for segment_id in rank:
        text = texts.get(segment_id)
        if text is None:
            continue
        if mode == "semantic":
            scored.append(ScoredSegment(segment_id, cosine[segment_id], "cosine", {"cosine": cosine[segment_id]}))
            continue
        keyword = keyword_score(terms, text)
        if mode == "full_text":
            scored.append(ScoredSegment(segment_id, keyword, "keyword", {"keyword": keyword}))
            continue
        similarity = cosine.get(segment_id)
        parts = {"keyword": keyword} if similarity is None else {"cosine": similarity, "keyword": keyword}
        scored.append(ScoredSegment(segment_id, hybrid_score(similarity, keyword, semantic_weight), "hybrid",
                                    parts))
    scored.sort(key=lambda s: (-s.score, rank[s.segment_id], str(s.segment_id)))
    return scored
