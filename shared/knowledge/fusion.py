"""Fusing rankings for hybrid retrieval, and the scores a threshold may be applied to.

Score semantics (what ``score`` means for each retrieval mode):

- **semantic** — cosine similarity of query and segment vectors, in [-1, 1] (1 - cosine
  distance; both vector stores report it so). Comparable across queries: a threshold on it is
  an absolute similarity bar.
- **full_text** — the engine's raw relevance (PostgreSQL ``ts_rank_cd`` with length
  normalisation, OpenSearch BM25): unbounded and comparable only within one query, so no fixed
  threshold fits. :func:`normalise_full_text` divides by the query's best score, giving [0, 1]
  relative to the best match.
- **hybrid** — :func:`reciprocal_rank_fusion`. The raw RRF sum (``FusedHit.rrf``) is tiny
  (at most ``sum(weights) / (k + 1)``, 1/61 per list with k = 60) and depends on k and on how
  many lists were fused, so thresholds apply to ``FusedHit.score``: ``rrf`` divided by the
  largest RRF any one segment could reach in this fusion (first in every non-empty list), in
  (0, 1]. 1.0 means first everywhere; with two equally weighted lists a segment found by only
  one of them scores at most 0.5, so a threshold above 0.5 keeps only segments both searches
  found. A reranker's score, when one runs, replaces all of these.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from shared.knowledge.vectorstore.ports import Hit

DEFAULT_RRF_K = 60


@dataclass(frozen=True)
class Contribution:
    """Where a fused segment stood in one of the fused rankings."""

    ranking: int  # the ranking's position in the input to reciprocal_rank_fusion
    score_type: Literal["cosine", "full_text"]
    rank: int  # 1-based
    score: float  # that ranking's own score for the segment (see the module docstring)


@dataclass(frozen=True)
class FusedHit:
    segment_id: uuid.UUID
    document_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    # sum over rankings of weight / (k + rank): the raw reciprocal-rank-fusion score.
    rrf: float
    # rrf / (the largest rrf any segment could reach in this fusion), in (0, 1].
    score: float
    # One per ranking the segment appeared in, in input order.
    contributions: tuple[Contribution, ...]

    def rank_in(self, score_type: Literal["cosine", "full_text"]) -> int | None:
        """Best rank among the rankings of this score type, None when it appeared in none."""
        ranks = [c.rank for c in self.contributions if c.score_type == score_type]
        return min(ranks) if ranks else None

    def score_in(self, score_type: Literal["cosine", "full_text"]) -> float | None:
        """The score from the ranking of this score type where the segment ranked best."""
        best = min((c for c in self.contributions if c.score_type == score_type), key=lambda c: c.rank, default=None)
        return best.score if best is not None else None


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], k: int = DEFAULT_RRF_K,
                           weights: Sequence[float] | None = None) -> list[FusedHit]:
    """Fuse best-first rankings: each segment scores ``sum(weight_i / (k + rank_i))`` over the
    rankings it appears in (rank 1-based; a segment listed twice in one ranking counts at its
    best rank). Returned best first; ties broken by the best single rank, then segment id, so
    the order is deterministic.

    ``weights`` (default all 1.0) scale each ranking; a ranking of weight 0 is ignored. The
    normalised ``score`` divides by ``sum(weight_i / (k + 1))`` over the non-empty rankings with
    positive weight: a ranking that found nothing does not lower everyone's score.
    """
    if k < 0:
        raise ValueError("k must not be negative")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    if rankings and not any(w > 0 for w in weights):
        raise ValueError("at least one weight must be positive")

    rrf: dict[uuid.UUID, float] = {}
    first_seen: dict[uuid.UUID, Hit] = {}
    contributions: dict[uuid.UUID, list[Contribution]] = {}
    best_possible = 0.0
    for index, (ranking, weight) in enumerate(zip(rankings, weights, strict=True)):
        if weight <= 0 or not ranking:
            continue
        best_possible += weight / (k + 1)
        seen_here: set[uuid.UUID] = set()
        for position, hit in enumerate(ranking, start=1):
            if hit.segment_id in seen_here:
                continue
            seen_here.add(hit.segment_id)
            rrf[hit.segment_id] = rrf.get(hit.segment_id, 0.0) + weight / (k + position)
            first_seen.setdefault(hit.segment_id, hit)
            contributions.setdefault(hit.segment_id, []).append(
                Contribution(index, hit.score_type, position, hit.score))

    fused = [
        FusedHit(segment_id=segment_id, document_id=first_seen[segment_id].document_id,
                 knowledge_base_id=first_seen[segment_id].knowledge_base_id, rrf=value,
                 # min(): float rounding must not push first-everywhere above 1.0.
                 score=min(1.0, value / best_possible), contributions=tuple(contributions[segment_id]))
        for segment_id, value in rrf.items()
    ]
    fused.sort(key=lambda f: (-f.rrf, min(c.rank for c in f.contributions), str(f.segment_id)))
    return fused


def normalise_full_text(hits: Sequence[Hit]) -> list[Hit]:
    """Full-text hits with ``score`` divided by the best score among them: [0, 1], the best hit
    1.0, order unchanged. Relative to this query's best match only (a query with weak matches
    still has a 1.0). Non-positive best score: every score 0.0."""
    best = max((h.score for h in hits), default=0.0)
    if best <= 0:
        return [replace(h, score=0.0) for h in hits]
    return [replace(h, score=max(0.0, h.score / best)) for h in hits]
