"""Knowledge-base errors. A document's indexing failure is stored with its code and message
(the user reads them on the document); the HTTP layer maps the same errors to the envelope."""

from __future__ import annotations

from shared.errors import Conflict, NotFound, StratusError, ValidationFailed


class KnowledgeBaseNotFound(NotFound):
    code, default_message = "knowledge_base_not_found", "Knowledge base not found"


class DocumentNotFound(NotFound):
    code, default_message = "document_not_found", "Document not found"


class SegmentNotFound(NotFound):
    code, default_message = "segment_not_found", "Segment not found"


class KnowledgeBaseNameTaken(Conflict):
    code, default_message = "knowledge_base_name_taken", "A knowledge base with this name exists"


class DocumentError(StratusError):
    """Indexing cannot succeed with this document as it is: no retry will help, the document
    is marked failed with this code and message."""

    code, status, default_message = "document_invalid", 422, "The document cannot be indexed"


class UnsupportedDocumentType(DocumentError):
    code, default_message = "document_unsupported_type", "This file type is not supported"


class DocumentParseError(DocumentError):
    code, default_message = "document_parse_failed", "The file could not be read"


class BinaryContent(DocumentParseError):
    code, default_message = ("document_binary_content",
                             "The content is binary, not text: upload it with its real content type")


class EmptyDocument(DocumentError):
    code, default_message = "document_empty", "The document contains no text"


class DuplicateDocument(DocumentError):
    code, default_message = "document_duplicate", "The knowledge base already holds identical content"


class DocumentTooLarge(DocumentError):
    code, default_message = "document_too_large", "The document is larger than allowed"


class InvalidChunking(ValidationFailed):
    code, default_message = "knowledge_invalid_chunking", "Chunking settings do not suit the embedding model"


class VectorStoreError(StratusError):
    """The vector store failed (retryable: the batch or request is retried)."""

    code, status, default_message = "knowledge_vector_store_error", 503, "The vector store is unavailable"
