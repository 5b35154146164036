"""Token counting for chunking: the embedding model's own tokenizer where one is available
offline, a stated estimate where not.

- ``local`` (the bundled all-MiniLM-L6-v2): its WordPiece tokenizer, exact.
- Every other protocol (OpenAI, Bedrock, OpenAI-compatible servers): their tokenizers are not
  available offline (tiktoken downloads its BPE files at first use; Titan's is not published),
  so the same WordPiece tokenizer serves as an estimate. It counts English within a few per
  cent of cl100k/o200k and *more* tokens than they do for CJK, code and rare words (BPE merges
  more), so chunks sized by it fit those models' much larger limits. A model-specific counter
  plugs in at :func:`token_counter` (one more branch returning an object with ``count`` and
  ``spans``).

Counts exclude special tokens ([CLS]/[SEP]); :func:`validate_chunking` adds them back when
comparing with a model's ``max_input_tokens``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from shared.knowledge.errors import InvalidChunking
from shared.knowledge.types import ChunkingConfig, TokenCounter
from shared.models.spec import ModelSpec, Protocol

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# [CLS] and [SEP]: the local model's max_input_tokens (256) counts them (docs/adr/0018).
LOCAL_SPECIAL_TOKENS = 2


class WordPieceCounter:
    """:class:`~shared.knowledge.types.TokenCounter` over a ``tokenizers.Tokenizer``.

    ``additive`` tells the chunker that counts add up across whitespace and punctuation (BERT
    pre-tokenizes there and nothing spans them), so a chunk cut at such boundaries needs no
    recount. ``spans_batch`` lets it tokenize many blocks in one parallel call.
    """

    additive = True

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        if len(texts) == 1:  # encode() skips the thread pool encode_batch starts
            return [len(self._tokenizer.encode(texts[0], add_special_tokens=False).ids)]
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def spans(self, text: str) -> list[tuple[int, int]]:
        # Offsets are in characters of the Python string (tokenizers converts them).
        return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)

    def spans_batch(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        if not texts:
            return []
        return [list(e.offsets) for e in self._tokenizer.encode_batch(texts, add_special_tokens=False)]


_lock = threading.Lock()
_wordpiece: WordPieceCounter | None = None


def _wordpiece_counter() -> WordPieceCounter:
    global _wordpiece
    if _wordpiece is None:
        with _lock:
            if _wordpiece is None:
                from shared.models.local_embedding import tokenizer

                _wordpiece = WordPieceCounter(tokenizer())
    return _wordpiece


def token_counter(spec: ModelSpec) -> TokenCounter:
    """The counter that sizes chunks for ``spec``'s embeddings; loaded once per container
    (the tokenizer takes ~40 ms). Exact for the local model, an estimate for the others
    (see the module docstring)."""
    # Every protocol uses WordPiece today; a model-specific tokenizer branches here.
    return _wordpiece_counter()


def is_exact(spec: ModelSpec) -> bool:
    """Whether :func:`token_counter` counts ``spec``'s own tokens (not an estimate)."""
    return spec.protocol is Protocol.LOCAL


def special_tokens(spec: ModelSpec) -> int:
    """Tokens the model adds to every input and counts against ``max_input_tokens``."""
    return LOCAL_SPECIAL_TOKENS if spec.protocol is Protocol.LOCAL else 0


def max_chunk_size(spec: ModelSpec) -> int:
    """The largest ``chunk_size`` whose chunks ``spec`` embeds without truncation."""
    return spec.max_input_tokens - special_tokens(spec)


def validate_chunking(config: ChunkingConfig, spec: ModelSpec, *, field: str = "body.chunking.chunk_size") -> None:
    """Refuse settings whose chunks the embedding model would truncate (422, the field named
    in the house ``details.fields`` form; ``field`` is its path in the request). Only what is
    embedded counts: ``chunk_size`` (the children, in parent-child); parents are returned, not
    embedded, so ``parent_size`` is not limited by the model."""
    limit = max_chunk_size(spec)
    if config.chunk_size > limit:
        message = f"chunk_size must be at most {limit}: the embedding model {spec.name} truncates longer inputs"
        raise InvalidChunking(message, details={"fields": [
            {"field": field, "type": "chunk_size_exceeds_model", "message": message, "max": limit}]})
