"""Chunking: blocks in, chunks out, streaming, sized in the embedding model's tokens.

Strategies (``ChunkingConfig.strategy``):

- ``fixed``: windows of ``chunk_size`` tokens over the whole token stream, each starting
  ``chunk_size - chunk_overlap`` tokens after the previous one. Structure is ignored by
  design (predictable sizes); cuts move back a few tokens to a word boundary when one is near.
- ``recursive`` (default): each block is cut at the first separator of ``separators`` that
  occurs in it, pieces still too long are cut with the following separators (``""``: between
  any tokens), then adjacent pieces are merged up to ``chunk_size`` tokens, consecutive chunks
  sharing up to ``chunk_overlap`` tokens of whole pieces (the scheme of LangChain's
  RecursiveCharacterTextSplitter, measured in tokens). A heading starts a new chunk, with no
  overlap carried across it.
- ``parent_child``: parents are ``recursive`` chunks of up to ``parent_size`` tokens with no
  overlap; each parent is then cut into children of ``chunk_size`` tokens with
  ``chunk_overlap``, which never cross their parent. Each parent (``kind="parent"``, numbered
  among parents) comes before its children (``kind="chunk"``, numbered across the document,
  ``parent_position`` naming the parent).

Every chunk's text is an exact slice of the (normalised) block text, or slices of consecutive
blocks joined by a blank line; it is never empty and never longer than ``chunk_size`` tokens
(``parent_size`` for parents) by the counter, nor than :data:`MAX_CHUNK_CHARS` characters.
``page`` is the page of the chunk's first character.

Speed and memory: each block is tokenized once (``TokenCounter.spans``; several blocks per call
when the counter offers ``spans_batch``) and every later measure is arithmetic on token indices.
A counter that declares ``additive = True`` (WordPiece: no token spans whitespace or
punctuation) has chunks cut at such boundaries counted by their spans; any other chunk is
recounted once with ``count`` and shortened if it turns out longer. Only the blocks of the
chunk being built are held, whatever the document's size.

Previews: :func:`preview_chunks` (or ``itertools.islice`` over :func:`chunk_blocks`) stops
reading the document after the chunks it returns.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice, pairwise

from shared.knowledge.text import normalize, sanitize
from shared.knowledge.types import Block, Chunk, ChunkingConfig, TokenCounter

# Below the segments table's 100,000-character check with room to spare; reached only by
# text the tokenizer sees as few tokens (e.g. long runs of unknown characters).
MAX_CHUNK_CHARS = 64_000
# Blocks longer than this are cut (at whitespace where possible) before tokenizing, so no
# caller can make the chunker hold one huge token list.
MAX_PIECE_CHARS = 16_384
# Between blocks inside a chunk.
BLOCK_JOINER = "\n\n"
# Blocks tokenized per call when the counter takes batches (it parallelises them).
_BATCH_CHARS = 64 * 1024
_BATCH_BLOCKS = 256
# How far a cut may move back to reach a word boundary instead of splitting a word.
_MAX_BACKOFF_TOKENS = 16


def chunk_blocks(blocks: Iterable[Block], config: ChunkingConfig, counter: TokenCounter) -> Iterator[Chunk]:
    """The chunks of ``blocks`` in document order (see the module docstring)."""
    chunker = _Chunker(config, counter)
    pieces = chunker.pieces(blocks)
    if config.strategy == "fixed":
        return chunker.fixed(pieces)
    if config.strategy == "parent_child":
        return chunker.parent_child(pieces)
    return chunker.recursive(pieces)


def preview_chunks(blocks: Iterable[Block], config: ChunkingConfig, counter: TokenCounter,
                   limit: int) -> list[Chunk]:
    """The first ``limit`` chunks, reading no further into ``blocks`` than they need. With
    ``parent_child``, the first ``limit`` parents, each followed by its children."""
    chunks = chunk_blocks(blocks, config, counter)
    try:
        if config.strategy != "parent_child":
            return list(islice(chunks, limit))
        out: list[Chunk] = []
        parents = 0
        for chunk in chunks:
            if chunk.kind == "parent":
                if parents == limit:
                    break
                parents += 1
            out.append(chunk)
        return out
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


# --- Internals -------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Piece:
    """A block (or a part of an over-long one), normalised and tokenized once."""

    text: str
    starts: list[int]  # character offset where each token starts
    ends: list[int]    # ... and ends
    page: int | None
    heading: bool
    first: bool        # the block's first part (where a heading begins)
    joiner: str        # put between the previous piece and this one inside a chunk
    glued_next: bool = False  # the next piece continues this one with no separator

    def splittable(self, k: int) -> bool:
        """Whether a cut before token ``k`` leaves no character in both halves: false between
        tokens of one character (a Hangul syllable is several jamo wordpieces)."""
        return k <= 0 or k >= len(self.starts) or self.starts[k] >= self.ends[k - 1]

    def settle(self, k: int, low: int, high: int) -> int:
        """The nearest splittable cut to ``k`` within ``(low, high]``, backwards first."""
        for candidate in range(k, low, -1):
            if self.splittable(candidate):
                return candidate
        for candidate in range(k + 1, high + 1):
            if self.splittable(candidate):
                return candidate
        return high

    def clean(self, k: int) -> bool:
        """Whether cutting before token ``k`` keeps every token count additive: true at
        whitespace, punctuation and Han characters (where WordPiece pre-tokenizes), false
        inside a word (the second half would be re-tokenized differently)."""
        if k <= 0:
            return bool(self.joiner)
        if k >= len(self.starts):
            return not self.glued_next
        start, end = self.starts[k], self.ends[k - 1]
        if start > end and self.text[end:start].isspace():
            return True
        if start < end:  # tokens of one character (Hangul jamo, expansions): never split it
            return False
        left, right = self.text[end - 1], self.text[start]
        return _is_han(left) or _is_han(right) or _splits_words(left) or _splits_words(right)


def _is_han(ch: str) -> bool:
    # The ranges BERT's normalizer isolates as single-character words.
    code = ord(ch)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x2CEAF or 0x2F800 <= code <= 0x2FA1F)


def _splits_words(ch: str) -> bool:
    if ch < "\x80":
        return not ch.isalnum()
    return unicodedata.category(ch)[0] in "PZ"


@dataclass(slots=True, eq=False)
class _Split:
    """Tokens ``[a, b)`` of a piece: the unit chunks are merged from."""

    piece: _Piece
    a: int
    b: int
    section: bool = False  # a heading starts here: a chunk should too
    heading: bool = False

    @property
    def tokens(self) -> int:
        return self.b - self.a

    @property
    def chars(self) -> int:
        return self.piece.ends[self.b - 1] - self.piece.starts[self.a]


def _lead(previous: _Split, split: _Split) -> int:
    """Characters between two consecutive splits inside a chunk."""
    if previous.piece is split.piece:
        return split.piece.starts[split.a] - split.piece.ends[previous.b - 1]
    return len(split.piece.joiner)


def _render(splits: Iterable[_Split]) -> str:
    """The text of consecutive splits: one slice per piece, pieces joined by their joiner."""
    parts: list[str] = []
    piece: _Piece | None = None
    a = b = 0
    for split in splits:
        if split.piece is piece:
            b = split.b
            continue
        if piece is not None:
            parts.append(piece.text[piece.starts[a]:piece.ends[b - 1]])
            parts.append(split.piece.joiner)
        piece, a, b = split.piece, split.a, split.b
    if piece is not None:
        parts.append(piece.text[piece.starts[a]:piece.ends[b - 1]])
    return "".join(parts)


def _exact(splits: list[_Split]) -> bool:
    """Whether the sum of the splits' tokens is the count of their rendered text (for an
    additive counter): clean outer cuts and no glued join inside."""
    if not (splits[0].piece.clean(splits[0].a) and splits[-1].piece.clean(splits[-1].b)):
        return False
    return all(s.piece is p.piece or s.piece.joiner for p, s in pairwise(splits))


def _cut_text(text: str, limit: int) -> tuple[str, str, str]:
    """(head, joiner, tail) of an over-long block: cut at the last line break or space in the
    final quarter of ``limit`` (that character becomes the joiner), else exactly at ``limit``."""
    floor = limit * 3 // 4
    for mark in ("\n", " ", "\u3000"):
        at = text.rfind(mark, floor, limit)
        if at >= 0:
            return text[:at], mark, text[at + 1:]
    return text[:limit], "", text[limit:]


Group = tuple[list[_Split], str, int]


class _Merger:
    """Merges splits into chunks of at most ``limit`` tokens sharing up to ``overlap``
    tokens; a split flagged ``section`` starts a new chunk. A chunk whose recount exceeds
    the limit gives its last splits back to the stream (or, a single split, is halved). A
    heading is not left alone in a chunk when the text after it does not fit: that text is
    cut smaller (``resplit``) so its beginning joins the heading."""

    def __init__(self, limit: int, overlap: int, counter: TokenCounter, additive: bool,
                 halve: Callable[[_Split], tuple[_Split, _Split]],
                 resplit: Callable[[_Split, int], list[_Split]]) -> None:
        self.limit, self.overlap, self.counter, self.additive = limit, overlap, counter, additive
        self._halve = halve
        self._resplit = resplit
        self.window: deque[_Split] = deque()
        self.tokens = 0
        self.chars = 0
        self.fresh = 0  # trailing splits of the window not yet in an emitted chunk

    def _append(self, split: _Split) -> None:
        if self.window:
            self.chars += _lead(self.window[-1], split)
        self.window.append(split)
        self.tokens += split.tokens
        self.chars += split.chars
        self.fresh += 1

    def _drop_front(self) -> None:
        split = self.window.popleft()
        self.tokens -= split.tokens
        self.chars -= split.chars + (_lead(split, self.window[0]) if self.window else 0)
        self.fresh = min(self.fresh, len(self.window))

    def _drop_back(self) -> _Split:
        split = self.window.pop()
        self.tokens -= split.tokens
        self.chars -= split.chars + (_lead(self.window[-1], split) if self.window else 0)
        self.fresh = max(0, self.fresh - 1)
        return split

    def _reset(self) -> None:
        self.window.clear()
        self.tokens = self.chars = self.fresh = 0

    def _too_big_with(self, split: _Split) -> bool:
        lead = _lead(self.window[-1], split) if self.window else 0
        return (self.tokens + split.tokens > self.limit
                or self.chars + lead + split.chars > MAX_CHUNK_CHARS)

    def _fresh_has_body(self) -> bool:
        return any(not split.heading for split in list(self.window)[len(self.window) - self.fresh:])

    def _close(self) -> tuple[Group | None, list[_Split]]:
        """Emit the window (verified); returns the chunk and the splits given back, in order."""
        back: list[_Split] = []
        while True:
            splits = list(self.window)
            text = _render(splits)
            exact = self.additive and _exact(splits)
            tokens = self.tokens if exact else self.counter.count([text])[0]
            if tokens <= self.limit or (len(splits) == 1 and splits[0].tokens == 1):
                self.fresh = 0
                back.reverse()
                return (splits, text, tokens), back
            if self.fresh > 1:
                back.append(self._drop_back())
            elif len(self.window) > self.fresh:
                self._drop_front()  # overlap only makes it too long: drop it
            else:  # one split, over the limit on its own: halve it, let the stream retry
                first, second = self._halve(self._drop_back())
                back.extend((second, first))
                back.reverse()
                self._reset()
                return None, back

    def _emit(self, pending: list[_Split]) -> Iterator[Group]:
        group, back = self._close()
        if group is not None:
            yield group
            while self.window and self.tokens > self.overlap:
                self._drop_front()
        pending.extend(reversed(back))

    def run(self, splits: Iterator[_Split]) -> Iterator[Group]:
        pending: list[_Split] = []  # given back or deferred: taken before the stream (a stack)
        while True:
            split = pending.pop() if pending else next(splits, None)
            if split is None:
                if not self.fresh:
                    return
                yield from self._emit(pending)
                continue
            if split.section:
                if self.fresh and self._fresh_has_body():
                    pending.append(split)  # taken again once the chunk before it is out
                    yield from self._emit(pending)
                    continue
                if not self.fresh:
                    self._reset()  # no overlap across a heading
            if self.window and self._too_big_with(split):
                room = self.limit - self.tokens
                if self.fresh and not self._fresh_has_body() and room > 0 and split.tokens > 1:
                    parts = self._resplit(split, room)
                    if len(parts) > 1:
                        pending.extend(reversed(parts))
                        continue
                if self.fresh:
                    pending.append(split)
                    yield from self._emit(pending)
                    continue
                while self.window and self._too_big_with(split):
                    self._drop_front()
            self._append(split)


class _Chunker:
    def __init__(self, config: ChunkingConfig, counter: TokenCounter) -> None:
        self.config = config
        self.counter = counter
        self.additive = bool(getattr(counter, "additive", False))
        # Separators as given, "" (cut anywhere) kept where the list has it.
        self.separators = list(config.separators)

    # -- blocks -> pieces ---------------------------------------------------------------

    def pieces(self, blocks: Iterable[Block]) -> Iterator[_Piece]:
        spans_batch = getattr(self.counter, "spans_batch", None)
        batch: list[_Piece] = []
        size = 0

        def tokenized() -> Iterator[_Piece]:
            texts = [piece.text for piece in batch]
            spans = spans_batch(texts) if spans_batch is not None else [self.counter.spans(t) for t in texts]
            for piece, offsets in zip(batch, spans, strict=True):
                if offsets:
                    piece.starts = [start for start, _ in offsets]
                    piece.ends = [end for _, end in offsets]
                    yield piece

        for block in blocks:
            text = normalize(block.text) if self.config.normalize_whitespace else sanitize(block.text)
            if not text or text.isspace():
                continue
            joiner, first = BLOCK_JOINER, True
            while text:
                if len(text) > MAX_PIECE_CHARS:
                    head, next_joiner, text = _cut_text(text, MAX_PIECE_CHARS)
                else:
                    head, next_joiner, text = text, BLOCK_JOINER, ""
                piece = _Piece(head, [], [], block.page, block.heading, first, joiner,
                               glued_next=bool(text) and not next_joiner)
                batch.append(piece)
                size += len(head)
                joiner, first = next_joiner, False
            if size >= _BATCH_CHARS or len(batch) >= _BATCH_BLOCKS:
                yield from tokenized()
                batch, size = [], 0
        if batch:
            yield from tokenized()

    # -- recursive splitting ------------------------------------------------------------

    def _fits(self, piece: _Piece, a: int, b: int, limit: int) -> bool:
        return b - a <= limit and piece.ends[b - 1] - piece.starts[a] <= MAX_CHUNK_CHARS

    def _split(self, piece: _Piece, a: int, b: int, separators: list[str], limit: int,
               unit: int) -> Iterator[tuple[int, int]]:
        """Token ranges covering ``[a, b)``, each within ``limit``."""
        if self._fits(piece, a, b, limit):
            yield a, b
            return
        for index, separator in enumerate(separators):
            if not separator:
                break
            bounds = self._separator_bounds(piece, a, b, separator)
            if not bounds:
                continue
            rest = separators[index + 1:]
            previous = a
            for bound in [*bounds, b]:
                if self._fits(piece, previous, bound, limit):
                    yield previous, bound
                else:
                    yield from self._split(piece, previous, bound, rest, limit, unit)
                previous = bound
            return
        yield from self._cut_tokens(piece, a, b, unit)

    @staticmethod
    def _separator_bounds(piece: _Piece, a: int, b: int, separator: str) -> list[int]:
        """Token indices in ``(a, b)`` right after each occurrence of ``separator``."""
        text, low, high = piece.text, piece.starts[a], piece.ends[b - 1]
        bounds: list[int] = []
        at = text.find(separator, low, high)
        while at >= 0:
            after = at + len(separator)
            k = bisect_left(piece.starts, after, a, b)
            if a < k < b and (not bounds or bounds[-1] < k) and piece.splittable(k):
                bounds.append(k)
            at = text.find(separator, after, high)
        return bounds

    def _cut_tokens(self, piece: _Piece, a: int, b: int, unit: int) -> Iterator[tuple[int, int]]:
        """``[a, b)`` in runs of ``unit`` tokens (no separator left), cut at a word boundary
        when one is within a quarter of the run."""
        x = a
        while x < b:
            end = min(b, x + unit)
            if piece.ends[end - 1] - piece.starts[x] > MAX_CHUNK_CHARS:
                end = max(x + 1, bisect_right(piece.ends, piece.starts[x] + MAX_CHUNK_CHARS, x, end))
            if end < b and not piece.clean(end):
                floor = max(x + 1, end - min(_MAX_BACKOFF_TOKENS, (end - x) // 4))
                back = end - 1
                while back >= floor and not piece.clean(back):
                    back -= 1
                end = back if back >= floor else piece.settle(end, x, b)
            yield x, end
            x = end

    def _halve(self, split: _Split) -> tuple[_Split, _Split]:
        piece, middle = split.piece, split.a + split.tokens // 2
        for candidate in range(middle, split.a, -1):  # a word boundary at or before the middle
            if piece.clean(candidate):
                middle = candidate
                break
        else:
            middle = piece.settle(middle, split.a, split.b - 1) if split.tokens > 2 else middle
        return (_Split(piece, split.a, middle, split.section, split.heading),
                _Split(piece, middle, split.b, False, split.heading))

    def _splits(self, pieces: Iterable[_Piece], limit: int, unit: int) -> Iterator[_Split]:
        for piece in pieces:
            section = piece.heading and piece.first
            for a, b in self._split(piece, 0, len(piece.starts), self.separators, limit, unit):
                yield _Split(piece, a, b, section, piece.heading)
                section = False

    def _resplit(self, split: _Split, limit: int) -> list[_Split]:
        unit = min(limit, self._unit(self.config.chunk_size, self.config.chunk_overlap))
        ranges = self._split(split.piece, split.a, split.b, self.separators, limit, unit)
        return [_Split(split.piece, a, b, split.section and a == split.a, split.heading) for a, b in ranges]

    def _merger(self, limit: int, overlap: int) -> _Merger:
        return _Merger(limit, overlap, self.counter, self.additive, self._halve, self._resplit)

    def _unit(self, limit: int, overlap: int) -> int:
        # Runs cut with no separator are merged back with overlap: runs of `overlap` tokens
        # let the overlap be honoured exactly.
        return min(limit, overlap) if overlap > 0 else limit

    # -- strategies ---------------------------------------------------------------------

    def recursive(self, pieces: Iterator[_Piece]) -> Iterator[Chunk]:
        size, overlap = self.config.chunk_size, self.config.chunk_overlap
        splits = self._splits(pieces, size, self._unit(size, overlap))
        for position, (group, text, tokens) in enumerate(self._merger(size, overlap).run(splits)):
            yield Chunk(position=position, text=text, tokens=tokens, page=group[0].piece.page)

    def parent_child(self, pieces: Iterator[_Piece]) -> Iterator[Chunk]:
        size, overlap, parent_size = self.config.chunk_size, self.config.chunk_overlap, self.config.parent_size
        unit = self._unit(size, overlap)
        parents = self._merger(parent_size, 0).run(self._splits(pieces, parent_size, parent_size))
        position = 0
        for parent_position, (group, text, tokens) in enumerate(parents):
            yield Chunk(position=parent_position, text=text, tokens=tokens, kind="parent",
                        page=group[0].piece.page)

            def children(group: list[_Split] = group) -> Iterator[_Split]:
                for split in group:
                    section = split.section
                    for a, b in self._split(split.piece, split.a, split.b, self.separators, size, unit):
                        yield _Split(split.piece, a, b, section, split.heading)
                        section = False

            for child, child_text, child_tokens in self._merger(size, overlap).run(children()):
                yield Chunk(position=position, text=child_text, tokens=child_tokens, kind="chunk",
                            parent_position=parent_position, page=child[0].piece.page)
                position += 1

    def fixed(self, pieces: Iterator[_Piece]) -> Iterator[Chunk]:
        return _FixedWindows(self.config.chunk_size, self.config.chunk_overlap, self.counter,
                             self.additive).run(pieces)


class _FixedWindows:
    """Windows over the document's token stream, numbered globally; only the pieces the
    current window touches are kept."""

    def __init__(self, size: int, overlap: int, counter: TokenCounter, additive: bool) -> None:
        self.size, self.overlap, self.counter, self.additive = size, overlap, counter, additive
        self.pieces: list[_Piece] = []
        self.offsets: list[int] = []  # global index of each kept piece's first token
        self.total = 0

    def _locate(self, k: int) -> tuple[int, int]:
        """(kept piece index, token index in it) of global token ``k``."""
        index = bisect_right(self.offsets, k) - 1
        return index, k - self.offsets[index]

    def _clean(self, k: int) -> bool:
        if k >= self.total:
            return True
        index, local = self._locate(k)
        return self.pieces[index].clean(local)

    def _settle(self, k: int, low: int, high: int) -> int:
        """The nearest cut to ``k`` in ``(low, high]`` that splits no character."""
        if k >= self.total:
            return k
        index, local = self._locate(k)
        if local == 0:
            return k
        offset = self.offsets[index]
        piece = self.pieces[index]
        return offset + piece.settle(local, max(0, low - offset), min(len(piece.starts), high - offset))

    def _splits(self, g0: int, g1: int) -> list[_Split]:
        out: list[_Split] = []
        index, local = self._locate(g0)
        while g0 < g1:
            piece = self.pieces[index]
            take = min(len(piece.starts) - local, g1 - g0)
            out.append(_Split(piece, local, local + take))
            g0 += take
            index, local = index + 1, 0
        return out

    def _chars(self, g0: int, g1: int) -> int:
        splits = self._splits(g0, g1)
        return sum(s.chars for s in splits) + sum(_lead(p, s) for p, s in pairwise(splits))

    def _window(self, start: int) -> tuple[int, str, int, int | None]:
        """(end, text, tokens, page) of the window starting at global token ``start``."""
        end = min(start + self.size, self.total)
        while end - start > 1 and self._chars(start, end) > MAX_CHUNK_CHARS:
            end = start + max(1, (end - start) * 3 // 4)
        if end < self.total and not self._clean(end):
            floor = max(start + self.overlap + 1, end - _MAX_BACKOFF_TOKENS)
            for back in range(end - 1, floor - 1, -1):
                if self._clean(back):
                    end = back
                    break
            else:
                end = self._settle(end, start, self.total)
        while True:
            splits = self._splits(start, end)
            text = _render(splits)
            exact = self.additive and self._clean(start) and self._clean(end) and _exact(splits)
            tokens = end - start if exact else self.counter.count([text])[0]
            if tokens <= self.size or end - start == 1:
                return end, text, tokens, splits[0].piece.page
            end = self._settle(max(start + 1, end - max(1, tokens - self.size)), start, end - 1)

    def run(self, pieces: Iterator[_Piece]) -> Iterator[Chunk]:
        start = emitted_to = position = 0
        for piece in pieces:
            self.pieces.append(piece)
            self.offsets.append(self.total)
            self.total += len(piece.starts)
            # Strictly more than a window buffered: its end boundary can be judged.
            while self.total - start > self.size:
                end, text, tokens, page = self._window(start)
                yield Chunk(position=position, text=text, tokens=tokens, page=page)
                position += 1
                emitted_to = end
                start = self._next_start(start, end)
                self._release(start)
        while emitted_to < self.total:
            end, text, tokens, page = self._window(start)
            yield Chunk(position=position, text=text, tokens=tokens, page=page)
            position += 1
            emitted_to = end
            start = self._next_start(start, end)

    def _next_start(self, start: int, end: int) -> int:
        """``overlap`` tokens before ``end``, moved forward (less overlap, never less than
        half) to a word boundary if it falls inside a word."""
        candidate = max(start + 1, end - self.overlap)
        limit = min(end - 1, candidate + self.overlap // 2)
        for k in range(candidate, limit + 1):
            if self._clean(k):
                return k
        return candidate

    def _release(self, start: int) -> None:
        index = bisect_right(self.offsets, start) - 1
        if index > 0:
            del self.pieces[:index]
            del self.offsets[:index]
