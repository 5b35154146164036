"""What every parser yields into: :class:`Parsed`, the lazy iterator of a document's blocks,
and the bound on a block's length all formats keep."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from shared.knowledge.errors import EmptyDocument
from shared.knowledge.types import Block

# ~4,000 wordpieces of English: a long paragraph, far below any memory concern, and small
# enough that a chunker tokenizing a block at a time stays flat.
MAX_BLOCK_CHARS = 16_384

# A format's parser: the blocks of the file at a path, in reading order. It may set
# ``parsed.pages``; ``max_pages`` (None: no limit) concerns formats with pages.
BlockReader = Callable[[Path, "Parsed", "int | None"], Iterator[Block]]


class Parsed(Iterator[Block]):
    """The blocks of one document, read lazily. ``pages``: PDF pages read so far (all of them
    once iteration ends), the page count a .docx declares, ``None`` for formats without
    pages; ``blocks`` and ``characters`` count what was yielded. Close it (or use ``with``) to
    release the file early, e.g. after a preview."""

    def __init__(self, fmt: str, source: Callable[[Parsed], Iterator[Block]]) -> None:
        self.format = fmt
        self.pages: int | None = None
        self.blocks = 0
        self.characters = 0
        self._source = source(self)

    def __iter__(self) -> Parsed:
        return self

    def __next__(self) -> Block:
        try:
            block = next(self._source)
        except StopIteration:
            if self.blocks == 0:
                raise _empty(self.format) from None
            raise
        self.blocks += 1
        self.characters += len(block.text)
        return block

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Parsed:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _empty(fmt: str) -> EmptyDocument:
    if fmt == "pdf":
        return EmptyDocument("The PDF contains no extractable text (scanned pages would need OCR, "
                             "which is not supported)")
    return EmptyDocument()
