"""Prompt assembly for a quick-answer turn, within the model's context window.

Order of precedence when everything does not fit: the system prompt and the question are
never cut (a question that cannot fit is refused before the turn starts); retrieved passages
come next, in rank order (a passage that does not fit ends the list: lower-ranked passages
are the cheapest loss); history fills what is left, newest turn first, so the oldest turns
are the ones dropped. The memory settings cap history further (turns and tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.models.types import Message

# Framing tokens a chat API adds per message (role markers and separators), plus a margin
# for the tokenizer being an estimate for most providers.
PER_MESSAGE_TOKENS = 4
SAFETY_MARGIN = 0.05

KNOWLEDGE_INSTRUCTIONS = (
    "Use the numbered passages below, taken from the knowledge base, to answer the user's question. "
    "Cite each passage you rely on with its number in square brackets, like [1] or [2][3]. "
    "If the passages do not contain the answer, say so rather than guessing."
)
NO_PASSAGES = ("The knowledge base returned nothing relevant to this question: say so if you cannot "
               "answer from general knowledge.")


@dataclass(frozen=True)
class Passage:
    """A retrieved segment offered to the model (``index`` is its citation number)."""

    index: int
    document_name: str
    page: int | None
    content: str
    source: Any = None  # the retrieval item it came from


@dataclass
class PromptPlan:
    messages: list[Message]
    passages: list[Passage]
    # What was kept and dropped, stored on the answer (MessageOut.context).
    report: dict[str, Any] = field(default_factory=dict)


def available_tokens(context_tokens: int, output_tokens: int) -> int:
    """Prompt tokens a model can take while leaving room for the answer."""
    return int((context_tokens - output_tokens) * (1 - SAFETY_MARGIN))


def passage_block(passage: Passage) -> str:
    where = passage.document_name + (f", page {passage.page}" if passage.page is not None else "")
    return f"[{passage.index}] ({where})\n{passage.content.strip()}"


def build_prompt(*, system_prompt: str, question: str, history: Sequence[tuple[str, str]],
                 candidates: Sequence[Passage] | None, context_tokens: int, output_tokens: int,
                 memory_max_tokens: int, count: Callable[[str], int]) -> PromptPlan:
    """``candidates`` None: the agent has no knowledge base (no knowledge block at all);
    an empty list: retrieval found nothing (the model is told so)."""
    budget = available_tokens(context_tokens, output_tokens)
    fixed = count(system_prompt) + count(question) + 2 * PER_MESSAGE_TOKENS
    if candidates is not None:
        fixed += count(KNOWLEDGE_INSTRUCTIONS) + PER_MESSAGE_TOKENS
    left = budget - fixed

    kept: list[Passage] = []
    if candidates:
        for passage in candidates:
            cost = count(passage_block(passage)) + 2
            if cost > left:
                break
            kept.append(Passage(len(kept) + 1, passage.document_name, passage.page, passage.content,
                                passage.source))
            left -= cost
    if candidates is not None and not kept:
        left -= count(NO_PASSAGES)

    turns: list[tuple[str, str]] = []
    history_left = min(left, memory_max_tokens)
    for q, a in reversed(history):
        cost = count(q) + count(a) + 2 * PER_MESSAGE_TOKENS
        if cost > history_left:
            break
        turns.append((q, a))
        history_left -= cost
    turns.reverse()

    system = system_prompt.strip()
    if candidates is not None:
        block = "\n\n".join(passage_block(p) for p in kept) if kept else NO_PASSAGES
        system = f"{system}\n\n{KNOWLEDGE_INSTRUCTIONS}\n\n<passages>\n{block}\n</passages>"
    messages = [Message(role="system", content=system)]
    for q, a in turns:
        messages += [Message(role="user", content=q), Message(role="assistant", content=a)]
    messages.append(Message(role="user", content=question))
    report = {
        "prompt_budget_tokens": budget,
        "history_turns_used": len(turns),
        "history_turns_dropped": len(history) - len(turns),
        "references_used": len(kept),
        "references_dropped": len(candidates or ()) - len(kept),
    }
    return PromptPlan(messages, kept, report)


def fits(*, system_prompt: str, question: str, context_tokens: int, output_tokens: int,
         count: Callable[[str], int]) -> tuple[bool, int, int]:
    """Whether the system prompt and the question alone fit: (fits, needed, available)."""
    needed = count(system_prompt) + count(question) + 2 * PER_MESSAGE_TOKENS
    budget = available_tokens(context_tokens, output_tokens)
    return needed <= budget, needed, budget


REWRITE_INSTRUCTIONS = (
    "Rewrite the user's last question so that it can be understood without the conversation before it: "
    "resolve pronouns and references to earlier turns. Keep the question's language and meaning. "
    "Answer with the rewritten question only, nothing else."
)
# Turns of history a rewrite sees (the question refers to recent ones), each side cut short:
# the rewrite needs the topic, not whole answers.
REWRITE_TURNS = 3
REWRITE_CHARS = 1000


def rewrite_messages(history: Sequence[tuple[str, str]], question: str) -> list[Message]:
    lines = []
    for q, a in history[-REWRITE_TURNS:]:
        lines += [f"User: {q[:REWRITE_CHARS]}", f"Assistant: {a[:REWRITE_CHARS]}"]
    lines.append(f"User's last question: {question[:4 * REWRITE_CHARS]}")
    return [Message(role="system", content=REWRITE_INSTRUCTIONS), Message(role="user", content="\n".join(lines))]
