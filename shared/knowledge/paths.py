"""Path ids of the knowledge API: a malformed id answers like a missing resource (404)."""

import uuid

from shared.ids import path_id
from shared.knowledge.errors import DocumentNotFound, KnowledgeBaseNotFound, SegmentNotFound


def kb_id(value: str) -> uuid.UUID:
    return path_id(value, KnowledgeBaseNotFound())


def document_id(value: str) -> uuid.UUID:
    return path_id(value, DocumentNotFound())


def segment_id(value: str) -> uuid.UUID:
    return path_id(value, SegmentNotFound())
