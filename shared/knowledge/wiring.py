"""The container's knowledge services, wired to its database, model gateway, vector store and
AWS clients. Every port is built on first use: listing documents never imports boto3, and
only functions that embed load a model."""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.knowledge.documents import DocumentService
    from shared.knowledge.ingestion import IngestionService
    from shared.knowledge.knowledge_bases import KnowledgeBaseService
    from shared.knowledge.retrieval import RetrievalService
    from shared.knowledge.segments import SegmentService
    from shared.knowledge.service import KnowledgeDeps
    from shared.knowledge.types import TokenCounter
    from shared.models.spec import ModelSpec

_lock = threading.Lock()


def _required(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def _files() -> Any:
    from shared.aws.clients import client
    from shared.config import get_settings
    from shared.knowledge.storage import S3DocumentFiles

    return S3DocumentFiles(client, _required(get_settings().uploads_bucket, "UPLOADS_BUCKET"))


def _queue() -> Any:
    from shared.aws.clients import client
    from shared.config import get_settings
    from shared.knowledge.storage import SqsIngestQueue

    return SqsIngestQueue(client, _required(get_settings().ingest_queue_url, "INGEST_QUEUE_URL"))


def _executions() -> Any:
    from shared.aws.clients import client
    from shared.knowledge.storage import StepFunctionsExecutions

    return StepFunctionsExecutions(client)


def _store() -> Any:
    from shared.knowledge.vectorstore.factory import get_vector_store

    return get_vector_store()


def _gateway() -> Any:
    from shared.models.wiring import model_gateway

    return model_gateway()


def _token_counter(spec: ModelSpec) -> TokenCounter:
    from shared.knowledge.tokens import token_counter

    return token_counter(spec)


@cache
def knowledge_deps() -> KnowledgeDeps:
    from shared.config import get_settings
    from shared.db.database import get_database
    from shared.knowledge.service import KnowledgeDeps

    return KnowledgeDeps(db=get_database(), settings=get_settings(), gateway=_gateway, store=_store, files=_files,
                         queue=_queue, executions=_executions, token_counter=_token_counter)


def knowledge_base_service() -> KnowledgeBaseService:
    from shared.knowledge.knowledge_bases import KnowledgeBaseService

    return KnowledgeBaseService(knowledge_deps())


def document_service() -> DocumentService:
    from shared.knowledge.documents import DocumentService

    return DocumentService(knowledge_deps())


def segment_service() -> SegmentService:
    from shared.knowledge.segments import SegmentService

    return SegmentService(knowledge_deps())


def ingestion_service() -> IngestionService:
    from shared.knowledge.ingestion import IngestionService

    return IngestionService(knowledge_deps())


def retrieval_service() -> RetrievalService:
    from shared.knowledge.retrieval import RetrievalService

    return RetrievalService(knowledge_deps())


def reset_knowledge_services() -> None:
    """Forget the cached wiring (tests and the local runtime change settings)."""
    with _lock:
        knowledge_deps.cache_clear()
