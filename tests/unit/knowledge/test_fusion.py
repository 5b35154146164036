"""Reciprocal rank fusion and score normalisation: the maths, the bounds, the weights."""

from __future__ import annotations

import uuid

import pytest

from shared.knowledge.fusion import Contribution, normalise_full_text, reciprocal_rank_fusion
from shared.knowledge.vectorstore.ports import Hit

KB = uuid.UUID(int=1000)
DOC = uuid.UUID(int=2000)


def seg(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def semantic(*ns: int) -> list[Hit]:
    return [Hit(seg(n), DOC, KB, 0.9 - i * 0.1, "cosine") for i, n in enumerate(ns)]


def full_text(*ns: int) -> list[Hit]:
    return [Hit(seg(n), DOC, KB, 10.0 - i, "full_text") for i, n in enumerate(ns)]


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([semantic(1, 2, 3), full_text(3, 1, 4)], k=60)
    by_id = {f.segment_id: f for f in fused}
    assert by_id[seg(1)].rrf == pytest.approx(1 / 61 + 1 / 62)
    assert by_id[seg(2)].rrf == pytest.approx(1 / 62)
    assert by_id[seg(3)].rrf == pytest.approx(1 / 63 + 1 / 61)
    assert by_id[seg(4)].rrf == pytest.approx(1 / 63)
    assert [f.segment_id for f in fused] == [seg(1), seg(3), seg(2), seg(4)]
    # Normalised by the best reachable (first in both lists): 2/61.
    assert by_id[seg(1)].score == pytest.approx((1 / 61 + 1 / 62) / (2 / 61))
    assert by_id[seg(2)].score == pytest.approx((1 / 62) / (2 / 61))


def test_contributions_record_ranks_and_scores() -> None:
    fused = reciprocal_rank_fusion([semantic(1, 2), full_text(2)])
    two = next(f for f in fused if f.segment_id == seg(2))
    assert two.contributions == (Contribution(0, "cosine", 2, semantic(1, 2)[1].score),
                                 Contribution(1, "full_text", 1, 10.0))
    assert two.rank_in("cosine") == 2 and two.rank_in("full_text") == 1
    assert two.score_in("cosine") == pytest.approx(0.8) and two.score_in("full_text") == 10.0
    one = next(f for f in fused if f.segment_id == seg(1))
    assert one.rank_in("full_text") is None and one.score_in("full_text") is None
    assert (one.document_id, one.knowledge_base_id) == (DOC, KB)


def test_normalised_score_bounds() -> None:
    # First everywhere scores exactly 1.0; everything is in (0, 1].
    fused = reciprocal_rank_fusion([semantic(7, *range(100, 200)), full_text(7, *range(150, 300))])
    assert fused[0].segment_id == seg(7) and fused[0].score == 1.0
    assert all(0 < f.score <= 1.0 for f in fused)
    # Found by only one of two equal lists: at most one half.
    only_one = [f for f in fused if len(f.contributions) == 1]
    assert only_one and all(f.score <= 0.5 for f in only_one)
    # Raw RRF stays tiny, whatever the list length: the reason thresholds use `score`.
    assert max(f.rrf for f in fused) == pytest.approx(2 / 61)


def test_an_empty_ranking_does_not_lower_scores() -> None:
    fused = reciprocal_rank_fusion([semantic(1, 2), []])
    assert fused[0].score == 1.0
    assert fused[1].score == pytest.approx(61 / 62)
    assert reciprocal_rank_fusion([[], []]) == []
    assert reciprocal_rank_fusion([]) == []


def test_weights() -> None:
    fused = reciprocal_rank_fusion([semantic(1, 2), full_text(2, 1)], k=60, weights=[0.7, 0.3])
    by_id = {f.segment_id: f for f in fused}
    assert by_id[seg(1)].rrf == pytest.approx(0.7 / 61 + 0.3 / 62)
    assert by_id[seg(2)].rrf == pytest.approx(0.7 / 62 + 0.3 / 61)
    assert [f.segment_id for f in fused] == [seg(1), seg(2)]  # the heavier list decides
    assert by_id[seg(1)].score == pytest.approx((0.7 / 61 + 0.3 / 62) / (1.0 / 61))
    # Weight 0: the ranking is ignored (its segments do not appear, nor count for the maximum).
    fused = reciprocal_rank_fusion([semantic(1), full_text(9)], weights=[1.0, 0.0])
    assert [f.segment_id for f in fused] == [seg(1)] and fused[0].score == 1.0


def test_k_changes_how_fast_ranks_decay() -> None:
    sharp = {f.segment_id: f.score for f in reciprocal_rank_fusion([semantic(1, 2, 3)], k=0)}
    flat = {f.segment_id: f.score for f in reciprocal_rank_fusion([semantic(1, 2, 3)], k=1000)}
    assert sharp[seg(3)] == pytest.approx(1 / 3)
    assert flat[seg(3)] == pytest.approx(1001 / 1003)


def test_duplicates_in_one_ranking_count_once_at_their_best_rank() -> None:
    fused = reciprocal_rank_fusion([semantic(1, 2, 1)])
    one = next(f for f in fused if f.segment_id == seg(1))
    assert one.rrf == pytest.approx(1 / 61) and len(one.contributions) == 1


def test_ties_are_ordered_deterministically() -> None:
    a = reciprocal_rank_fusion([semantic(5, 6), full_text(6, 5)])
    b = reciprocal_rank_fusion([full_text(6, 5), semantic(5, 6)])
    assert [f.segment_id for f in a] == [f.segment_id for f in b] == [seg(5), seg(6)]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([semantic(1)], weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="negative"):
        reciprocal_rank_fusion([semantic(1)], weights=[-1.0])
    with pytest.raises(ValueError, match="positive"):
        reciprocal_rank_fusion([semantic(1)], weights=[0.0])
    with pytest.raises(ValueError, match="k"):
        reciprocal_rank_fusion([semantic(1)], k=-1)


def test_normalise_full_text() -> None:
    hits = full_text(1, 2, 3)  # 10, 9, 8
    normalised = normalise_full_text(hits)
    assert [h.score for h in normalised] == pytest.approx([1.0, 0.9, 0.8])
    assert [h.segment_id for h in normalised] == [seg(1), seg(2), seg(3)]
    assert all(h.score_type == "full_text" for h in normalised)
    assert normalise_full_text([]) == []
    zero = [Hit(seg(1), DOC, KB, 0.0, "full_text")]
    assert [h.score for h in normalise_full_text(zero)] == [0.0]
