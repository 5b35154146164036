"""Knowledge-base API shapes: knowledge bases, documents, segments, retrieval."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# Re-exported: the retrieval settings are the domain's (agents store them too).
from shared.knowledge.contract import RetrievalMode, RetrievalSettings, ScoreType
from shared.knowledge.types import ChunkingConfig, DocumentStatus, KnowledgeBaseStatus, SegmentKind
from shared.models.spec import NAME_PATTERN
from shared.validation import INT4_MAX, INT8_MAX, Int8, LaxUUID, RequestModel

MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]
MetadataScalar = Annotated[str, StringConstraints(max_length=500)] | Int8 | float | bool
MetadataValue = MetadataScalar | Annotated[list[MetadataScalar], Field(max_length=50)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=32)]
Tags = Annotated[list[Tag], Field(max_length=32)]


class CreateKnowledgeBase(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    # Default: the tenant's default embedding model, else the platform's.
    embedding_model: str | None = Field(default=None, pattern=NAME_PATTERN)
    chunking: ChunkingConfig | None = None
    retrieval: RetrievalSettings | None = None


class UpdateKnowledgeBase(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    # Only while the knowledge base holds no document (vectors of two models never mix).
    embedding_model: str | None = Field(default=None, pattern=NAME_PATTERN)
    chunking: ChunkingConfig | None = None
    retrieval: RetrievalSettings | None = None
    version: int = Field(ge=1, le=INT4_MAX, description="The version read; a stale one answers 409")


class KnowledgeBaseOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    embedding_model: str
    dimensions: int
    chunking: ChunkingConfig
    retrieval: RetrievalSettings
    # "deleting": its documents, vectors and files are being removed; then it is gone (404).
    status: KnowledgeBaseStatus
    # Documents whose file has arrived: an upload form not used yet (pending_upload) is not one.
    document_count: int = Field(description="Documents in the knowledge base, uploads still awaited not counted")
    segment_count: int
    created_at: datetime
    updated_at: datetime
    version: int


class CreateDocument(RequestModel):
    """Either an upload (``content_type`` and ``size``: a presigned form is returned) or
    inline ``text``."""

    # The rule of _one_source, in OpenAPI (text, and no size; or content_type and size, and no text).
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["text"], "properties": {"text": {"type": "string"}, "size": {"type": "null"}}},
        {"required": ["content_type", "size"], "properties": {
            "text": {"type": "null"}, "content_type": {"type": "string"},
            "size": {"type": "integer", "minimum": 1, "maximum": INT8_MAX}}},
    ]})
    name: str = Field(min_length=1, max_length=255)
    content_type: str | None = Field(default=None, max_length=200)
    size: int | None = Field(default=None, ge=1, le=INT8_MAX)
    text: str | None = Field(default=None, min_length=1)
    metadata: Metadata = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    # Default: the knowledge base's chunking.
    chunking: ChunkingConfig | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CreateDocument:
        if self.text is not None:
            from shared.knowledge.parsing.decoding import looks_binary

            if looks_binary(self.text):
                # Binary bytes passed off as text would be indexed as garbage.
                raise ValueError("text looks like binary data (control characters or undecodable bytes): "
                                 "send text, or upload the file with its real content type")
            if self.size is not None:
                raise ValueError("give either text, or content_type and size for an upload, not both")
        elif self.content_type is None or self.size is None:
            raise ValueError("give text, or content_type and size for an upload")
        return self


class UploadForm(BaseModel):
    """POST the file as multipart/form-data to ``url`` with every field, then the file last
    (field name ``file``). The policy enforces the content type and size declared."""

    method: Literal["POST"] = "POST"
    url: str
    fields: dict[str, str]
    expires_at: datetime


class DocumentError(BaseModel):
    code: str
    message: str


class DocumentProgress(BaseModel):
    segments_done: int
    segments_total: int
    percent: float


class DocumentOut(BaseModel):
    id: uuid.UUID
    knowledge_base_id: uuid.UUID
    name: str
    content_type: str
    size: int
    source: Literal["upload", "text"]
    status: DocumentStatus
    error: DocumentError | None
    progress: DocumentProgress
    tokens: int
    pages: int | None
    # Milliseconds per stage of the last indexing: parsing, chunking, embedding, total.
    timings: dict[str, int]
    metadata: dict[str, Any]
    tags: list[str]
    chunking: ChunkingConfig
    content_hash: str | None
    attempt: int
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None
    version: int


class DocumentCreated(DocumentOut):
    # Present for uploads; inline text is stored at once.
    upload: UploadForm | None = None


class UpdateDocument(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    metadata: Metadata | None = None
    tags: Tags | None = None
    version: int = Field(ge=1, le=INT4_MAX)


class ReindexDocument(RequestModel):
    # New chunking for this document (default: keep its own).
    chunking: ChunkingConfig | None = None


class PreviewChunks(RequestModel):
    """Chunk ``text``, or a document already uploaded, without storing anything."""

    # The rule of _one_source, in OpenAPI.
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["text"], "properties": {"text": {"type": "string"}, "document_id": {"type": "null"}}},
        {"required": ["document_id"], "properties": {"text": {"type": "null"}, "document_id": {"type": "string"}}},
    ]})
    text: str | None = Field(default=None, min_length=1, max_length=500_000)
    document_id: LaxUUID | None = None
    # Default: the knowledge base's chunking.
    chunking: ChunkingConfig | None = None
    limit: int = Field(default=20, ge=1, le=200)

    @model_validator(mode="after")
    def _one_source(self) -> PreviewChunks:
        if (self.text is None) == (self.document_id is None):
            raise ValueError("give either text or document_id")
        return self


class PreviewSegment(BaseModel):
    position: int
    kind: SegmentKind
    parent_position: int | None
    text: str
    tokens: int
    page: int | None


class PreviewOut(BaseModel):
    embedding_model: str
    chunking: ChunkingConfig
    segments: list[PreviewSegment]
    # True when the document has more segments than ``limit``.
    truncated: bool
    boilerplate_lines: int = Field(default=0, description=(
        "Lines left out before chunking, as ingestion leaves them out: navigation lines (\"Next: … "
        "Previous: …\") and table-of-contents entries with dot leaders. Counted over the part of the "
        "document the preview read."))


class SegmentOut(BaseModel):
    id: uuid.UUID
    document_id: uuid.UUID
    kind: SegmentKind
    position: int
    parent_id: uuid.UUID | None
    text: str
    tokens: int
    page: int | None
    enabled: bool
    source: Literal["auto", "manual"]
    # pending: not searchable yet; indexed: searchable (when enabled).
    index_status: Literal["pending", "indexed"]
    created_at: datetime
    updated_at: datetime
    version: int


class CreateSegment(RequestModel):
    text: str = Field(min_length=1, max_length=20_000)
    enabled: bool = True


class UpdateSegment(RequestModel):
    # The rule of _something, in OpenAPI.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["text"], "properties": {"text": {"type": "string"}}},
        {"required": ["enabled"], "properties": {"enabled": {"type": "boolean"}}},
    ]})
    text: str | None = Field(default=None, min_length=1, max_length=20_000)
    enabled: bool | None = None
    version: int = Field(ge=1, le=INT4_MAX)

    @model_validator(mode="after")
    def _something(self) -> UpdateSegment:
        if self.text is None and self.enabled is None:
            raise ValueError("give text or enabled")
        return self


class RetrieveFilters(RequestModel):
    # Document metadata equal to each value (a list: any of its values).
    metadata: Metadata = Field(default_factory=dict)
    # Documents carrying every one of these tags.
    tags: Tags = Field(default_factory=list)
    document_ids: list[LaxUUID] = Field(default_factory=list, max_length=100)


class RerankRequest(RequestModel):
    # Default: the knowledge base's rerank model, else the tenant's default rerank model.
    model: str | None = Field(default=None, pattern=NAME_PATTERN)
    # How many fused candidates are reranked (default: 4 times top_k, at most 100).
    candidates: int | None = Field(default=None, ge=1, le=100)


class RetrieveRequest(RequestModel):
    query: str = Field(min_length=1, max_length=4000)
    # Defaults: the knowledge base's retrieval settings.
    mode: RetrievalMode | None = None
    top_k: int | None = Field(default=None, ge=1, le=100)
    score_threshold: float | None = Field(default=None, ge=0, le=1, description=(
        "Leave out items whose `score` is below this (after reranking, the rerank score). Scores are "
        "absolute, so one bar serves every query."))
    semantic_weight: float | None = Field(default=None, ge=0, le=1, description=(
        "Hybrid mode: the weight of the cosine similarity in `score`; the keyword score gets the rest."))
    filters: RetrieveFilters | None = None
    rerank: RerankRequest | None = None


class RetrieveMultiRequest(RetrieveRequest):
    knowledge_base_ids: list[LaxUUID] = Field(min_length=1, max_length=20)


class RetrievedSegment(BaseModel):
    segment_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    document_id: uuid.UUID
    document_name: str
    position: int
    page: int | None
    # The matched segment's text.
    text: str
    # What to give a model: the parent segment's text under parent-child chunking, else ``text``.
    content: str
    score: float = Field(description=(
        "The segment's relevance to the query, as `score_type` says. Absolute: comparable across "
        "queries and knowledge bases (an unrelated query scores low, not 1.0); items are ordered by it "
        "and `score_threshold` applies to it."))
    score_type: ScoreType = Field(description=(
        "What `score` is. `cosine` (semantic mode): cosine similarity of query and segment embeddings, "
        "-1 to 1. `keyword` (full_text mode): the share of the query's terms the segment contains, 0 to 1 "
        "(English function words such as \"the\" or \"how\" left out). `hybrid`: `semantic_weight` * "
        "cosine (clamped to 0..1) + (1 - `semantic_weight`) * keyword, 0 to 1. `rerank`: the rerank "
        "model's relevance."))
    scores: dict[str, float] = Field(description=(
        "The parts of `score`, by score type: `cosine` and `keyword` for hybrid (a segment the keyword "
        "search alone found has its cosine computed too), and after reranking the score it had before "
        "under its own type."))
    metadata: dict[str, Any]
    tags: list[str]


class RetrieveResult(BaseModel):
    query: str
    mode: RetrievalMode
    reranked: bool
    items: list[RetrievedSegment]
