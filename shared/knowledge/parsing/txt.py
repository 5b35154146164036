"""Plain text: paragraphs are runs of non-blank lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from shared.knowledge.parsing.decoding import decoded, lines
from shared.knowledge.parsing.parsed import MAX_BLOCK_CHARS, Parsed
from shared.knowledge.types import Block


def blocks(path: Path, parsed: Parsed, max_pages: int | None) -> Iterator[Block]:
    return text_blocks(lines(decoded(path)))


def text_blocks(source: Iterable[str]) -> Iterator[Block]:
    """Paragraphs: runs of non-blank lines, joined by newlines."""
    paragraph: list[str] = []
    size = 0
    for line in source:
        if not line.strip():
            if paragraph:
                yield Block("\n".join(paragraph))
                paragraph, size = [], 0
            continue
        if paragraph and size + len(line) > MAX_BLOCK_CHARS:
            yield Block("\n".join(paragraph))
            paragraph, size = [], 0
        paragraph.append(line)
        size += len(line) + 1
    if paragraph:
        yield Block("\n".join(paragraph))

