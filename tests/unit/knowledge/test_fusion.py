"""Retrieval scores: the keyword score, the hybrid sum, and the order and parts of the scored
candidates of each mode. Every score is absolute: it does not depend on the other hits."""

from __future__ import annotations

import uuid

import pytest

from shared.knowledge.fusion import ScoredSegment, hybrid_score, keyword_score, score_candidates
from shared.knowledge.text import keyword_terms
from shared.knowledge.vectorstore.ports import Hit

KB = uuid.UUID(int=1000)
DOC = uuid.UUID(int=2000)


def seg(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def semantic(*pairs: tuple[int, float]) -> list[Hit]:
    return [Hit(seg(n), DOC, KB, cosine, "cosine") for n, cosine in pairs]


def full_text(*ns: int) -> list[Hit]:
    # Engine relevance: unbounded, falling with the rank; never reported.
    return [Hit(seg(n), DOC, KB, 40.0 - i, "full_text") for i, n in enumerate(ns)]


def test_keyword_terms_leave_out_function_words_unless_nothing_else_is_left() -> None:
    assert keyword_terms("How do plants turn light into energy?") == ["plants", "turn", "light", "energy"]
    assert keyword_terms("what is it") == ["what", "is", "it"]
    assert keyword_terms("知识库 search") == ["知识", "识库", "search"]
    assert keyword_terms("!!!") == []


def test_keyword_score_is_the_share_of_query_terms_present() -> None:
    terms = keyword_terms("revenue growth in Europe")  # revenue, growth, europe
    assert keyword_score(terms, "Revenue grew in EUROPE, revenue!") == pytest.approx(2 / 3)
    assert keyword_score(terms, "Europe's revenue growth") == 1.0
    assert keyword_score(terms, "nothing related") == 0.0
    assert keyword_score([], "anything") == 0.0
    # Whole terms as the index tokenises them: no prefixes, no stemming; CJK bigrams.
    assert keyword_score(["grow"], "growth") == 0.0
    chinese = "知识库将文档切分成片段并计算向量以便检索。"
    assert keyword_score(keyword_terms("文档检索"), chinese) == pytest.approx(2 / 3)  # 文档, 检索; not 档检


def test_hybrid_score_is_the_weighted_sum_of_clamped_parts() -> None:
    assert hybrid_score(0.8, 0.5, 0.5) == pytest.approx(0.65)
    assert hybrid_score(0.8, 0.5, 0.7) == pytest.approx(0.7 * 0.8 + 0.3 * 0.5)
    assert hybrid_score(-0.4, 1.0, 0.5) == pytest.approx(0.5)  # a negative cosine adds nothing
    assert hybrid_score(None, 1.0, 0.5) == pytest.approx(0.5)  # an unknown cosine counts as 0
    assert hybrid_score(1.0000001, 1.0, 0.5) == 1.0
    assert hybrid_score(0.9, 0.0, 1.0) == pytest.approx(0.9) and hybrid_score(0.9, 0.4, 0.0) == pytest.approx(0.4)


def test_hybrid_scores_are_absolute_not_relative_to_the_best_hit() -> None:
    texts = {seg(1): "Lambda functions scale automatically.", seg(2): "Aurora stores relational data."}
    # The best hit of a query about nothing here: only a weak cosine, no keyword.
    unrelated = score_candidates("hybrid", "chocolate cake recipe", semantic((1, 0.06), (2, 0.01)), [], texts)
    assert [s.score for s in unrelated] == pytest.approx([0.03, 0.005])
    related = score_candidates("hybrid", "lambda scaling", semantic((1, 0.7), (2, 0.1)), full_text(1), texts)
    assert related[0] == ScoredSegment(seg(1), pytest.approx(0.5 * 0.7 + 0.5 * 0.5), "hybrid",
                                       {"cosine": 0.7, "keyword": 0.5})
    assert related[0].score > 10 * unrelated[0].score


def test_every_candidate_gets_both_parts_and_the_order_follows_the_score() -> None:
    texts = {seg(1): "alpha beta gamma", seg(2): "alpha", seg(3): "delta", seg(4): "alpha beta gamma delta"}
    # seg(4) was found by the keyword ranking alone: its cosine was looked up.
    scored = score_candidates("hybrid", "alpha beta gamma", semantic((3, 0.9), (1, 0.5), (2, 0.45)),
                              full_text(4, 1, 2), texts, semantic_weight=0.5, cosines={seg(4): 0.2})
    assert [(s.segment_id, s.scores) for s in scored] == [
        (seg(1), {"cosine": 0.5, "keyword": 1.0}),
        (seg(4), {"cosine": 0.2, "keyword": 1.0}),
        (seg(3), {"cosine": 0.9, "keyword": 0.0}),
        (seg(2), {"cosine": 0.45, "keyword": pytest.approx(1 / 3)}),
    ]
    assert [s.score for s in scored] == pytest.approx([0.75, 0.6, 0.45, 0.225 + 1 / 6])
    assert all(s.score_type == "hybrid" and 0 <= s.score <= 1 for s in scored)
    # Without its cosine, a keyword-only segment has the keyword part alone.
    bare = score_candidates("hybrid", "alpha beta gamma", semantic((1, 0.5)), full_text(4), texts)
    assert {s.segment_id: s.scores for s in bare}[seg(4)] == {"keyword": 1.0}
    assert {s.segment_id: s.score for s in bare}[seg(4)] == pytest.approx(0.5)


def test_a_threshold_on_the_score_keeps_a_head_of_the_order() -> None:
    texts = {seg(n): f"alpha {'beta ' * (n % 2)}word{n}" for n in range(1, 30)}
    scored = score_candidates("hybrid", "alpha beta", semantic(*[(n, 1 - n / 30) for n in range(1, 30)]),
                              full_text(*range(29, 0, -1)), texts, semantic_weight=0.3)
    for threshold in (0.2, 0.5, 0.7, 0.9):
        kept = [s for s in scored if s.score >= threshold]
        assert kept == scored[:len(kept)]


def test_semantic_mode_reports_the_cosine_in_the_searchs_order() -> None:
    texts = {seg(n): "x" for n in (1, 2, 3)}
    scored = score_candidates("semantic", "query", semantic((2, 0.8), (1, 0.3), (3, -0.2)), [], texts)
    assert [(s.segment_id, s.score, s.score_type, s.scores) for s in scored] == [
        (seg(2), 0.8, "cosine", {"cosine": 0.8}), (seg(1), 0.3, "cosine", {"cosine": 0.3}),
        (seg(3), -0.2, "cosine", {"cosine": -0.2})]


def test_full_text_mode_reports_the_keyword_score_with_ties_in_the_engines_order() -> None:
    texts = {seg(1): "refund policy", seg(2): "refund refund refund", seg(3): "refund", seg(4): "policy refund"}
    # The engine ranked seg(2) first (term frequency); coverage puts both terms first.
    scored = score_candidates("full_text", "refund policy", [], full_text(2, 4, 3, 1), texts)
    assert [(s.segment_id, s.score, s.score_type) for s in scored] == [
        (seg(4), 1.0, "keyword"), (seg(1), 1.0, "keyword"), (seg(2), 0.5, "keyword"), (seg(3), 0.5, "keyword")]
    assert scored[0].scores == {"keyword": 1.0}


def test_segments_without_text_are_left_out_and_duplicates_count_once() -> None:
    texts = {seg(1): "alpha"}
    scored = score_candidates("hybrid", "alpha", semantic((1, 0.4), (2, 0.9), (1, 0.4)), full_text(1, 2), texts)
    assert [(s.segment_id, s.scores) for s in scored] == [(seg(1), {"cosine": 0.4, "keyword": 1.0})]
    assert score_candidates("hybrid", "alpha", [], [], texts) == []


def test_ties_are_ordered_deterministically() -> None:
    texts = {seg(n): "same text" for n in (5, 6, 7)}
    a = score_candidates("full_text", "same", [], full_text(6, 5, 7), texts)
    b = score_candidates("full_text", "same", [], full_text(6, 5, 7), dict(reversed(texts.items())))
    assert [s.segment_id for s in a] == [s.segment_id for s in b] == [seg(6), seg(5), seg(7)]
