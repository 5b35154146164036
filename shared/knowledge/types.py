"""Value types and vocabulary shared by parsing, chunking, indexing, retrieval and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A knowledge base is "deleting" while its documents, vectors and files are removed.
KnowledgeBaseStatus = Literal["active", "deleting"]

# A document's indexing lifecycle:
# pending_upload → uploaded → parsing → chunking → embedding → indexed | failed
DocumentStatus = Literal["pending_upload", "uploaded", "parsing", "chunking", "embedding", "indexed", "failed"]
DOCUMENT_STATUSES: tuple[DocumentStatus, ...] = get_args(DocumentStatus)
# Indexing under way (a re-index must wait for it to finish or fail).
INDEXING_STATUSES: tuple[DocumentStatus, ...] = ("uploaded", "parsing", "chunking", "embedding")

# "chunk": searched; "parent" (parent-child chunking): returned for its children, never searched.
SegmentKind = Literal["chunk", "parent"]


@dataclass(frozen=True)
class Block:
    """A run of text from a parsed document, in reading order. ``page`` is 1-based where the
    format has pages (PDF); ``heading`` marks a title line (markdown, html, docx)."""

    text: str
    page: int | None = None
    heading: bool = False


@dataclass(frozen=True)
class Chunk:
    """A segment the chunker produced. Children of parent-child chunking name their parent's
    ``position`` among the parents (``kind == "parent"`` rows)."""

    position: int
    text: str
    tokens: int
    kind: SegmentKind = "chunk"
    parent_position: int | None = None
    page: int | None = None


class TokenCounter(Protocol):
    """The embedding model's own tokenizer, as chunking needs it."""

    def count(self, texts: list[str]) -> list[int]:
        """Tokens of each text (no special tokens)."""
        ...

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each token of ``text``, in order (no special tokens)."""
        ...


# Paragraphs, lines, sentences (Latin and CJK full-width punctuation), clauses, words, anything.
DEFAULT_SEPARATORS = ("\n\n", "\n", "\u3002", ". ", "\uff01", "? ", "\uff1f", "; ", "\uff1b", "\uff0c", ", ", " ", "")


class ChunkingConfig(BaseModel):
    """How a document is cut into segments. Sizes are in the embedding model's tokens."""

    # Strict as the request models that carry it (its fields are all JSON-native types).
    model_config = ConfigDict(extra="forbid", strict=True)

    strategy: Literal["fixed", "recursive", "parent_child"] = "recursive"
    chunk_size: Annotated[int, Field(ge=16, le=8192)] = 200
    chunk_overlap: Annotated[int, Field(ge=0, le=4096)] = 20
    # Tried in order by "recursive" (and to cut parents and children in "parent_child"); ""
    # means "anywhere" (cut by tokens).
    separators: list[Annotated[str, Field(max_length=16)]] = Field(
        default_factory=lambda: list(DEFAULT_SEPARATORS), min_length=1, max_length=32)
    # parent_child: parents of up to parent_size tokens are returned; children of chunk_size
    # tokens are searched.
    parent_size: Annotated[int, Field(ge=32, le=16384)] = 1000
    # Collapse runs of spaces and blank lines; drop control characters.
    normalize_whitespace: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ChunkingConfig:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        if self.strategy == "parent_child" and self.parent_size <= self.chunk_size:
            raise ValueError("parent_size must be larger than chunk_size")
        return self
