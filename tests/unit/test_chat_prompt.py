"""Prompt assembly within the context window: what is kept, in which order, and what goes first."""

from __future__ import annotations

from shared.chat.events import stream_key
from shared.chat.prompt import (
    KNOWLEDGE_INSTRUCTIONS,
    NO_PASSAGES,
    Passage,
    available_tokens,
    build_prompt,
    fits,
    rewrite_messages,
)


def words(text: str) -> int:
    return len(text.split())


def passages(*texts: str) -> list[Passage]:
    return [Passage(i + 1, f"doc{i + 1}.md", i or None, text) for i, text in enumerate(texts)]


def test_everything_fits_in_order() -> None:
    plan = build_prompt(system_prompt="Be brief.", question="Why?", history=[("q1", "a1"), ("q2", "a2")],
                        candidates=passages("alpha beta", "gamma"), context_tokens=10_000, output_tokens=1000,
                        memory_max_tokens=1000, count=words)
    roles = [m.role for m in plan.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m.content for m in plan.messages[1:]] == ["q1", "a1", "q2", "a2", "Why?"]
    system = plan.messages[0].content
    assert system.startswith("Be brief.") and KNOWLEDGE_INSTRUCTIONS in system
    assert "[1] (doc1.md)\nalpha beta" in system and "[2] (doc2.md, page 1)\ngamma" in system
    assert plan.report == {"prompt_budget_tokens": available_tokens(10_000, 1000), "history_turns_used": 2,
                           "history_turns_dropped": 0, "references_used": 2, "references_dropped": 0}


def test_history_goes_before_references_and_oldest_first() -> None:
    history = [(f"question {n} " + "x " * 20, f"answer {n} " + "y " * 20) for n in range(5)]
    # Budget: (300 - 50) * 0.95 = 237 tokens: 58 fixed, 68 for the passages, 111 left: two turns.
    plan = build_prompt(system_prompt="sys", question="now?", history=history,
                        candidates=passages("p " * 30, "q " * 30), context_tokens=300, output_tokens=50,
                        memory_max_tokens=10_000, count=words)
    assert plan.report["references_used"] == 2
    kept = [m.content.split()[1] for m in plan.messages[1:-1] if m.role == "user"]
    assert kept == ["3", "4"]  # the newest turns, in order
    assert plan.report["history_turns_dropped"] == 3


def test_lower_ranked_passages_go_when_even_they_do_not_fit() -> None:
    # Budget 190: 58 fixed, 44 a passage: two fit, 44 left, less than the old turn's 59.
    plan = build_prompt(system_prompt="sys", question="q", history=[("old " * 50, "turn")],
                        candidates=passages("a " * 40, "b " * 40, "c " * 40), context_tokens=250, output_tokens=50,
                        memory_max_tokens=10_000, count=words)
    assert [p.index for p in plan.passages] == [1, 2] and plan.report["references_dropped"] == 1
    assert plan.report["history_turns_used"] == 0  # no room left after the passages


def test_memory_budget_caps_history() -> None:
    history = [("q " * 10, "a " * 10)] * 4
    plan = build_prompt(system_prompt="s", question="q", history=history, candidates=None,
                        context_tokens=100_000, output_tokens=1000, memory_max_tokens=60, count=words)
    assert plan.report["history_turns_used"] == 2  # 28 tokens a turn
    assert KNOWLEDGE_INSTRUCTIONS not in plan.messages[0].content


def test_knowledge_without_results_says_so() -> None:
    plan = build_prompt(system_prompt="s", question="q", history=[], candidates=[], context_tokens=1000,
                        output_tokens=100, memory_max_tokens=100, count=words)
    assert NO_PASSAGES in plan.messages[0].content and plan.passages == []


def test_fits_refuses_what_cannot_be_sent() -> None:
    assert fits(system_prompt="s", question="q " * 10, context_tokens=1000, output_tokens=100, count=words)[0]
    ok, needed, available = fits(system_prompt="s", question="q " * 1000, context_tokens=1000, output_tokens=100,
                                 count=words)
    assert not ok and needed > available == available_tokens(1000, 100)


def test_rewrite_sees_recent_turns_only() -> None:
    messages = rewrite_messages([(f"q{n}", f"a{n}") for n in range(6)], "and then?")
    body = messages[1].content
    assert "q2" not in body and "User: q3" in body and body.endswith("User's last question: and then?")


def test_stream_key_is_one_hash_tag_per_answer() -> None:
    # (The SSE frames moved to tests/unit/test_http_stream.py with the wire format.)
    assert stream_key(__import__("uuid").UUID(int=1)).startswith("chat:{msg:00000000-")
