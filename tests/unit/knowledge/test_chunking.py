"""Chunking with the local model's real tokenizer: sizes always within limits by a recount,
positions contiguous, nothing lost, overlap, headings, parent-child linkage, pages, and
streaming (a preview reads only what it needs)."""

from __future__ import annotations

import random
import re
import tracemalloc
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from shared.knowledge.chunking import MAX_CHUNK_CHARS, chunk_blocks, preview_chunks
from shared.knowledge.parsing import parse
from shared.knowledge.tokens import token_counter
from shared.knowledge.types import Block, Chunk, ChunkingConfig, TokenCounter
from shared.models.spec import Capability, ModelSpec, Protocol
from tests.support.documents import SEED, make_markdown, paragraph

LOCAL = ModelSpec(name="all-minilm-l6-v2", display_name="local", protocol=Protocol.LOCAL, provider_model="x",
                  capabilities=[Capability.EMBEDDING], dimensions=384, max_input_tokens=256)
COUNTER = token_counter(LOCAL)


def _chunks(blocks: list[Block], **config: object) -> list[Chunk]:
    return list(chunk_blocks(blocks, ChunkingConfig.model_validate(config), COUNTER))


def _tokens(text: str) -> list[str]:
    return [text[a:b] for a, b in COUNTER.spans(text)]


def _prose(paragraphs: int, seed: int = SEED) -> list[Block]:
    rng = random.Random(seed)
    return [Block(paragraph(rng)) for _ in range(paragraphs)]


def _mixed_document() -> list[Block]:
    """Prose, headings, pages, and the hard cases: CJK with and without punctuation, a long
    kana run (no boundary a cut can take without re-tokenizing differently), Hangul (several
    tokens per character), digits, URLs, an over-long unknown word, one huge line."""
    rng = random.Random(7)
    blocks = [Block("Handbook", heading=True, page=1)]
    for page in range(1, 4):
        blocks.append(Block(f"Chapter {page}", heading=True, page=page))
        blocks.extend(Block(paragraph(rng), page=page) for _ in range(4))
    blocks += [
        Block("知识库支持中文文档的检索。每个文档被切分成片段，片段被向量化后存入索引。" * 8),  # noqa: RUF001
        Block("中文没有标点的长句子" * 60),
        Block("ありがとうございます" * 40),
        Block("한국어 텍스트 검색 엔진 " * 40),
        Block(" ".join(str(rng.randrange(10**12)) for _ in range(300))),
        Block("see https://example.com/a/very/long/path?with=query&and=more#fragment " * 30),
        Block(("x" * 3000 + " ") * 30),
        Block(" ".join(paragraph(rng) for _ in range(60)).replace(". ", ", ")),
    ]
    return blocks


CONFIGS = [
    {"strategy": "recursive", "chunk_size": 200, "chunk_overlap": 20},
    {"strategy": "recursive", "chunk_size": 16, "chunk_overlap": 0},
    {"strategy": "recursive", "chunk_size": 50, "chunk_overlap": 30},
    {"strategy": "fixed", "chunk_size": 100, "chunk_overlap": 10},
    {"strategy": "fixed", "chunk_size": 16, "chunk_overlap": 15},
    {"strategy": "parent_child", "chunk_size": 40, "chunk_overlap": 5, "parent_size": 300},
    {"strategy": "recursive", "chunk_size": 64, "chunk_overlap": 8, "separators": ["\n\n", ""]},
    {"strategy": "recursive", "chunk_size": 64, "chunk_overlap": 8, "separators": ["|"]},
    {"strategy": "recursive", "chunk_size": 100, "chunk_overlap": 0, "normalize_whitespace": False},
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_every_chunk_within_limits_by_a_recount(config: dict[str, object]) -> None:
    chunks = _chunks(_mixed_document(), **config)
    settings = ChunkingConfig.model_validate(config)
    assert chunks
    for chunk in chunks:
        limit = settings.parent_size if chunk.kind == "parent" else settings.chunk_size
        assert chunk.text.strip() == chunk.text and chunk.text
        assert chunk.tokens == COUNTER.count([chunk.text])[0], chunk
        assert 0 < chunk.tokens <= limit, chunk
        assert len(chunk.text) <= MAX_CHUNK_CHARS
    for kind in ("chunk", "parent"):
        positions = [c.position for c in chunks if c.kind == kind]
        assert positions == list(range(len(positions)))


@pytest.mark.parametrize("strategy", ["recursive", "fixed"])
def test_without_overlap_nothing_is_lost_or_repeated(strategy: str) -> None:
    blocks = [*_prose(40), Block("知识库支持中文文档的检索。" * 30), Block("word " * 700)]
    chunks = _chunks(blocks, strategy=strategy, chunk_size=48, chunk_overlap=0)
    assert [t for c in chunks for t in _tokens(c.text)] == [t for b in blocks for t in _tokens(b.text)]


@pytest.mark.parametrize("strategy", ["recursive", "fixed"])
def test_forced_cuts_inside_a_word_split_no_character(strategy: str) -> None:
    # 30 Hangul syllables with no space: one word of ~80 jamo wordpieces, three per syllable
    # sharing its offsets. A cut must fall between syllables, or one would be in two chunks.
    blocks = [Block(" ".join(["한국어텍스트" * 5] * 4))]
    chunks = _chunks(blocks, strategy=strategy, chunk_size=32, chunk_overlap=0)
    assert len(chunks) >= 8
    assert "".join(c.text.replace(" ", "") for c in chunks) == blocks[0].text.replace(" ", "")
    assert all(c.tokens == COUNTER.count([c.text])[0] <= 32 for c in chunks)


def test_small_input_is_one_exact_chunk() -> None:
    blocks = [Block("  Alpha   beta.\t"), Block(""), Block("Gamma\n\n\n\ndelta.")]
    [chunk] = _chunks(blocks)
    assert chunk == Chunk(position=0, text="Alpha beta.\n\nGamma\n\ndelta.", tokens=6, page=None)


def test_whitespace_kept_when_not_normalizing() -> None:
    [chunk] = _chunks([Block("a  \t b\x00\r\nc")], normalize_whitespace=False)
    assert chunk.text == "a  \t b\r\nc"
    assert _chunks([Block(" \n\t ")], normalize_whitespace=False) == []


def test_recursive_prefers_paragraphs_then_sentences() -> None:
    sentences = [f"Sentence number {i} is here." for i in range(12)]  # 6 tokens each
    blocks = [Block(" ".join(sentences[:6])), Block(" ".join(sentences[6:]))]
    chunks = _chunks(blocks, chunk_size=40, chunk_overlap=0)
    # Each paragraph (36 tokens) fits alone; together they do not.
    assert [c.text for c in chunks] == [blocks[0].text, blocks[1].text]
    chunks = _chunks(blocks, chunk_size=20, chunk_overlap=0)
    assert [c.text for c in chunks] == [" ".join(sentences[i:i + 3]) for i in range(0, 12, 3)]


def test_recursive_overlap_repeats_whole_pieces() -> None:
    sentences = [f"Sentence number {i} is here." for i in range(12)]
    chunks = _chunks([Block(" ".join(sentences))], chunk_size=20, chunk_overlap=8)
    assert [c.text for c in chunks][:2] == [" ".join(sentences[0:3]), " ".join(sentences[2:5])]
    for previous, chunk in pairwise(chunks):
        assert previous.text.endswith(chunk.text.split(". ")[0] + ".")


def test_fixed_windows_are_full_and_overlap() -> None:
    text = " ".join(f"w{i}" for i in range(400))  # "w", "##6", "##8": up to three tokens a word
    chunks = _chunks([Block(text)], strategy="fixed", chunk_size=50, chunk_overlap=10)
    assert len(chunks) > 10
    for previous, chunk in pairwise(chunks):
        assert previous.tokens >= 50 - 3  # at most a word's tokens given up to end on a word
        # Cuts fall between words, and the next window repeats the last few.
        assert re.fullmatch(r"w\d+( w\d+)*", chunk.text)
        words = chunk.text.split()
        assert previous.text.endswith(" ".join(words[:2])) or " ".join(words[:3]) in previous.text
    assert chunks[-1].text.endswith("w399")


def test_fixed_cuts_inside_a_word_only_when_there_is_no_boundary() -> None:
    # 50 kana: one word of 50 wordpieces (a word over 100 characters would be one [UNK]).
    text = " ".join(["ありがとうございます" * 5] * 6)
    chunks = _chunks([Block(text)], strategy="fixed", chunk_size=32, chunk_overlap=4)
    assert len(chunks) >= 10
    assert all(c.tokens == COUNTER.count([c.text])[0] <= 32 for c in chunks)


def test_heading_starts_a_chunk_and_stops_overlap() -> None:
    body = [paragraph(random.Random(i)) for i in range(4)]
    blocks = [Block("Intro", heading=True), Block(body[0]), Block(body[1]),
              Block("Next", heading=True), Block("Sub", heading=True), Block(body[2]), Block(body[3])]
    chunks = _chunks(blocks, chunk_size=250, chunk_overlap=100)
    assert [c.text for c in chunks] == [f"Intro\n\n{body[0]}\n\n{body[1]}", f"Next\n\nSub\n\n{body[2]}\n\n{body[3]}"]


def test_a_heading_is_not_left_alone_before_a_long_paragraph() -> None:
    long = " ".join(f"Sentence number {i} is here." for i in range(30))
    chunks = _chunks([Block("Title", heading=True), Block(long)], chunk_size=40, chunk_overlap=0)
    assert chunks[0].text.startswith("Title\n\nSentence number 0 is here.")
    assert all(c.tokens <= 40 for c in chunks)


def test_parent_child_linkage() -> None:
    blocks = _prose(30)
    chunks = _chunks(blocks, strategy="parent_child", chunk_size=40, chunk_overlap=0, parent_size=200)
    parents = [c for c in chunks if c.kind == "parent"]
    children = [c for c in chunks if c.kind == "chunk"]
    assert len(parents) > 3 and len(children) > len(parents)
    assert [p.position for p in parents] == list(range(len(parents)))
    assert [c.position for c in children] == list(range(len(children)))
    current: Chunk | None = None
    by_parent: dict[int, list[Chunk]] = {}
    for chunk in chunks:
        if chunk.kind == "parent":
            current = chunk
            assert chunk.parent_position is None
            assert chunk.tokens <= 200
            continue
        # Every child follows its parent and lies inside it.
        assert current is not None and chunk.parent_position == current.position
        assert chunk.text in current.text and chunk.tokens <= 40
        by_parent.setdefault(current.position, []).append(chunk)
    for parent in parents:
        assert [t for c in by_parent[parent.position] for t in _tokens(c.text)] == _tokens(parent.text)
    # Parents together are the document.
    assert [t for p in parents for t in _tokens(p.text)] == [t for b in blocks for t in _tokens(b.text)]


def test_page_is_that_of_the_first_character() -> None:
    rng = random.Random(3)
    blocks = [Block(paragraph(rng), page=page) for page in (1, 1, 2, 2, 3, 3) for _ in range(2)]
    chunks = _chunks(blocks, chunk_size=120, chunk_overlap=0)
    for chunk in chunks:
        [origin] = [b for b in blocks if b.text.startswith(chunk.text[:60]) or chunk.text[:60] in b.text][:1]
        assert chunk.page == origin.page
    assert [c.page for c in chunks] == sorted(c.page or 0 for c in chunks)
    assert {c.page for c in chunks} == {1, 2, 3}


class _Generous:
    """A counter whose counts are not additive (a BPE-like tokenizer that spends a token on
    every blank line): chunks merged from several blocks are recounted and shortened."""

    def count(self, texts: list[str]) -> list[int]:
        return [len(text.split()) + text.count("\n\n") for text in texts]

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [match.span() for match in re.finditer(r"\S+", text)]


def test_a_counter_that_does_not_add_up_is_recounted() -> None:
    counter: TokenCounter = _Generous()
    blocks = [Block(" ".join(["word"] * 5)) for _ in range(20)]
    config = ChunkingConfig(chunk_size=16, chunk_overlap=0)
    chunks = list(chunk_blocks(blocks, config, counter))
    assert all(c.tokens == counter.count([c.text])[0] <= 16 for c in chunks)
    # 5 words + a blank line per extra block: two blocks (11) fit, three (17) do not.
    assert all(c.text.count("\n\n") == 1 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) == 100


def _counting(blocks: list[Block], seen: list[int]) -> Iterator[Block]:
    for block in blocks:
        seen[0] += 1
        yield block


def test_preview_reads_only_what_it_needs() -> None:
    blocks = _prose(3000)
    seen = [0]
    chunks = preview_chunks(_counting(blocks, seen), ChunkingConfig(chunk_size=100, chunk_overlap=10), COUNTER, 3)
    assert [c.position for c in chunks] == [0, 1, 2]
    assert seen[0] < 300  # one tokenizer batch, not the document
    seen = [0]
    config = ChunkingConfig(strategy="parent_child", chunk_size=50, chunk_overlap=0, parent_size=200)
    chunks = preview_chunks(_counting(blocks, seen), config, COUNTER, 2)
    assert [c.position for c in chunks if c.kind == "parent"] == [0, 1]
    assert all(c.parent_position in (0, 1) for c in chunks if c.kind == "chunk")
    assert chunks[-1].kind == "chunk"
    assert seen[0] < 300


def _peak(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = sum(1 for _ in chunk_blocks(parse(path, "md"), ChunkingConfig(), COUNTER))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_document(tmp_path: Path) -> None:
    small_count, small = _peak(make_markdown(tmp_path / "small.md", 150_000))
    large_count, large = _peak(make_markdown(tmp_path / "large.md", 600_000))
    assert large_count > 3.5 * small_count
    # Python objects (the tokenizer's are native): a batch of blocks and their offsets.
    assert large < small * 1.25 + 100_000, (small, large)
    assert large < 2_500_000
