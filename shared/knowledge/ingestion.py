"""Indexing: an uploaded document becomes searchable segments, without an HTTP request waiting.

S3 event (or a re-index message) → claim the document (idempotent) → download to a temporary
file while hashing → parse and chunk as a stream, writing segments in batches → embed in
batches (inline for small documents, a Step Functions Map over segment ranges for large ones)
→ indexed. A failure the document itself causes (unsupported type, empty, duplicate, model
refuses) is stored on it at once; a transient one (provider 5xx, rate limit, store down) is
raised so the queue or the state machine retries it, and only the failed batch runs again.
The sweeper retries, then fails, documents that stop moving."""

from __future__ import annotations

import logging
import math
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from shared.errors import NotFound, StratusError
from shared.knowledge import repository as repo
from shared.knowledge.errors import DocumentError, DuplicateDocument, EmptyDocument
from shared.knowledge.service import KnowledgeDeps, content_hash
from shared.knowledge.storage import DocumentFiles, Executions, IngestQueue, document_prefix
from shared.knowledge.types import Block, ChunkingConfig
from shared.knowledge.vectorstore.ports import IndexedSegment, VectorStore
from shared.models.errors import ModelNotConfigured, ProviderError
from shared.models.spec import Capability
from shared.observability import tracer

logger = logging.getLogger(__name__)

# Segment rows written per transaction while chunking.
_INSERT_BATCH = 500
# A Map item list stays far below Step Functions' 256 KiB state limit.
# About seven history events per item: far below the 25,000 an execution may have.
_MAX_MAP_ITEMS = 500
# Embedded segments are written and counted in the document's progress at least this often
# (and after each provider batch larger than this): progress moves during a long batch.
_PROGRESS_SEGMENTS = 32


class _Superseded(Exception):
    """The document was deleted or re-indexed while this run was writing: it stops quietly."""


class MessageError(ValueError):
    """A queue message that is not ours: it goes to the dead-letter queue to be looked at."""


def _permanent(exc: BaseException) -> StratusError | None:
    """The error to store on the document when no retry can help, else None (transient)."""
    from shared.models.gateway import EmbeddingInterrupted

    if isinstance(exc, EmbeddingInterrupted):
        exc = exc.cause_error
    if isinstance(exc, DocumentError | ModelNotConfigured | NotFound):
        return exc
    if isinstance(exc, ProviderError) and not exc.retryable:
        return exc
    return None


def _error_text(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, StratusError):
        return exc.code, exc.message
    # Internals stay in the logs; the document says what kind of thing failed.
    return "document_internal_error", f"Indexing failed unexpectedly ({type(exc).__name__}); it will be retried"


def parse_document_key(key: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(tenant, document) from ``tenants/<t>/knowledge-bases/<kb>/documents/<d>/source``."""
    parts = unquote_plus(key).split("/")
    if len(parts) != 7 or parts[0] != "tenants" or parts[2] != "knowledge-bases" or parts[4] != "documents":
        return None
    try:
        return uuid.UUID(parts[1]), uuid.UUID(parts[5])
    except ValueError:
        return None


def _is_file_key(key: str) -> bool:
    """``tenants/<t>/files/…``: an uploaded file (docs/files.md), not a document."""
    parts = unquote_plus(key).split("/")
    return len(parts) > 3 and parts[0] == "tenants" and parts[2] == "files"


class _Timed:
    """Wraps the parser's iterator to measure the time spent parsing (chunking is the rest)."""

    def __init__(self, blocks: Iterator[Block]) -> None:
        self._blocks = blocks
        self.seconds = 0.0

    def __iter__(self) -> Iterator[Block]:
        while True:
            started = time.perf_counter()
            try:
                block = next(self._blocks)
            except StopIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield block


class IngestionService:
    def __init__(self, deps: KnowledgeDeps) -> None:
        self._d = deps
        self._db = deps.db

    def _store(self) -> VectorStore:
        store: VectorStore = self._d.store()
        return store

    # Messages ------------------------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def handle_message(self, body: dict[str, Any]) -> None:
        """One SQS message: an S3 notification (one or more records) or a re-index request."""
        if body.get("Event") == "s3:TestEvent":
            return  # S3 checks the queue when notifications are configured
        if body.get("type") == "index":
            try:
                tenant_id, document_id = uuid.UUID(body["tenant_id"]), uuid.UUID(body["document_id"])
                attempt = int(body["attempt"])
            except (KeyError, ValueError, TypeError) as exc:
                raise MessageError(f"malformed index message: {exc}") from exc
            self.index(tenant_id, document_id, attempt)
            return
        records = body.get("Records")
        if not isinstance(records, list):
            raise MessageError("neither an S3 notification nor an index message")
        for record in records:
            if not str(record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            key = record.get("s3", {}).get("object", {}).get("key", "")
            ids = parse_document_key(key)
            if ids is None:
                if not _is_file_key(key):  # uploaded files share the prefix; they are no documents
                    logger.warning("object outside the document layout ignored", extra={"key": key})
                continue
            self.index(ids[0], ids[1], None)

    # Indexing ------------------------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def index(self, tenant_id: uuid.UUID, document_id: uuid.UUID, attempt: int | None) -> None:
        with self._db.transaction(tenant_id) as conn:
            document = repo.claim_document(conn, tenant_id, document_id, attempt)
        if document is None:
            # Redelivered, duplicated, superseded by a re-index, or deleted: nothing to do.
            logger.info("document not waiting for indexing; event ignored",
                        extra={"document_id": str(document_id), "attempt": attempt})
            return
        try:
            self._index(document)
        except _Superseded:
            logger.info("indexing superseded", extra={"document_id": str(document_id)})
        except Exception as exc:
            permanent = _permanent(exc)
            code, message = _error_text(permanent or exc)
            with self._db.transaction(tenant_id) as conn:
                if permanent is not None:
                    repo.fail_document(conn, tenant_id, document_id, document["attempt"], code, message)
                else:
                    # Back to "uploaded" so the queue's redelivery can claim it again.
                    repo.record_error(conn, tenant_id, document_id, code, message)
                    repo.set_document_state(conn, tenant_id, document_id, document["attempt"], "uploaded")
            if permanent is None:
                raise
            logger.info("document failed", extra={"document_id": str(document_id), "code": code})

    def _index(self, document: dict[str, Any]) -> None:
        from shared.knowledge.boilerplate import BoilerplateFilter
        from shared.knowledge.chunking import chunk_blocks
        from shared.knowledge.parsing import detect_format, parse

        tenant_id, document_id, attempt = document["tenant_id"], document["id"], document["attempt"]
        kb_id = document["knowledge_base_id"]
        started = time.perf_counter()
        with self._db.transaction(tenant_id) as conn:
            kb = repo.get_knowledge_base(conn, tenant_id, kb_id)
        if kb is None or kb["status"] != "active":
            return
        target = self._d.gateway().target(tenant_id, kb["embedding_model"], Capability.EMBEDDING)
        spec = target.spec
        if spec.dimensions != kb["dimensions"]:
            raise DocumentError(f"Embedding model {spec.name} now has {spec.dimensions} dimensions; this knowledge "
                                f"base holds {kb['dimensions']}-dimension vectors",
                                code="document_dimension_mismatch")
        chunking = ChunkingConfig.model_validate(document["chunking"])
        counter = self._d.token_counter(spec)
        files: DocumentFiles = self._d.files()
        timings: dict[str, int] = {}
        with tempfile.NamedTemporaryFile(prefix="stratus-ingest-") as spool:
            downloaded = files.download(document["s3_key"], spool, self._d.settings.max_document_bytes)
            timings["download_ms"] = int((time.perf_counter() - started) * 1000)
            with self._db.transaction(tenant_id) as conn:
                duplicate = repo.find_duplicate(conn, tenant_id, kb_id, document_id, downloaded.sha256)
                if duplicate is not None:
                    raise DuplicateDocument(f"Identical content is already in this knowledge base as "
                                            f"\"{duplicate['name']}\" ({duplicate['id']})",
                                            details={"document_id": str(duplicate["id"])})
                repo.set_document_state(conn, tenant_id, document_id, attempt, "parsing",
                                        content_hash=downloaded.sha256, size=downloaded.size)
            fmt = detect_format(document["content_type"], document["name"])
            chunk_started = time.perf_counter()
            with parse(Path(spool.name), fmt) as parsed:
                blocks = _Timed(parsed)
                self._write_segments(document, chunk_blocks(BoilerplateFilter()(blocks), chunking, counter))
                pages = parsed.pages
            chunk_seconds = time.perf_counter() - chunk_started
        timings["parsing_ms"] = int(blocks.seconds * 1000)
        timings["chunking_ms"] = int((chunk_seconds - blocks.seconds) * 1000)
        with self._db.transaction(tenant_id) as conn:
            progress = repo.refresh_progress(conn, tenant_id, document_id)
            total = int(progress["segments_total"]) if progress else 0
            if total == 0:
                raise EmptyDocument("The document contains no text to index (a scanned PDF needs OCR first)")
            repo.set_document_state(conn, tenant_id, document_id, attempt, "embedding", timings=timings,
                                    pages=pages)
        self._embed_all(document, total)

    def _write_segments(self, document: dict[str, Any], chunks: Any) -> None:
        tenant_id, document_id, kb_id = document["tenant_id"], document["id"], document["knowledge_base_id"]
        rows: list[tuple[Any, ...]] = []
        first_batch = True
        for chunk in chunks:
            parent_id = repo.segment_id(document_id, "parent", chunk.parent_position) \
                if chunk.parent_position is not None else None
            rows.append((repo.segment_id(document_id, chunk.kind, chunk.position), tenant_id, kb_id, document_id,
                         chunk.kind, chunk.position, parent_id, chunk.text, chunk.tokens, chunk.page,
                         content_hash(chunk.text), "auto"))
            if len(rows) >= _INSERT_BATCH:
                self._flush(document, rows, first_batch)
                first_batch, rows = False, []
        if rows:
            self._flush(document, rows, first_batch)

    def _flush(self, document: dict[str, Any], rows: list[tuple[Any, ...]], first: bool) -> None:
        tenant_id, document_id = document["tenant_id"], document["id"]
        with self._db.transaction(tenant_id) as conn:
            if not repo.attempt_is_current(conn, tenant_id, document_id, document["attempt"]):
                raise _Superseded
            repo.insert_segments(conn, rows)
            if first:
                repo.set_document_state(conn, tenant_id, document_id, document["attempt"], "chunking")
            else:
                repo.touch_document(conn, tenant_id, document_id)

    def _embed_all(self, document: dict[str, Any], total: int) -> None:
        tenant_id, document_id, attempt = document["tenant_id"], document["id"], document["attempt"]
        settings = self._d.settings
        # Positions of automatic chunks run 0..total-1; ranges over them are the batches.
        size = max(settings.ingest_batch_segments, math.ceil(total / _MAX_MAP_ITEMS))
        ranges = [(first, min(first + size, total)) for first in range(0, total, size)]
        if total <= settings.ingest_inline_segments or not settings.ingest_state_machine_arn:
            for first, last in ranges:
                self.embed_batch(tenant_id, document_id, attempt, first, last, raise_permanent=True)
            self.finish(tenant_id, document_id, attempt)
            return
        executions: Executions = self._d.executions()
        items = [{"tenant_id": str(tenant_id), "document_id": str(document_id), "attempt": attempt,
                  "first": first, "last": last} for first, last in ranges]
        executions.start(settings.ingest_state_machine_arn, f"{document_id}-{attempt}-{document['retries']}",
                         {"tenant_id": str(tenant_id), "document_id": str(document_id), "attempt": attempt,
                          "batches": items})

    @tracer.capture_method(capture_response=False)
    def embed_batch(self, tenant_id: uuid.UUID, document_id: uuid.UUID, attempt: int, first: int, last: int,
                    *, raise_permanent: bool = False) -> dict[str, Any]:
        """Embed the pending chunks at positions [first, last) and write them to the vector
        store. Idempotent: chunks already indexed are skipped. A transient failure raises
        (the batch is retried alone); a permanent one fails the document."""
        with self._db.transaction(tenant_id) as conn:
            document = repo.get_document(conn, tenant_id, document_id)
            if document is None or document["attempt"] != attempt or document["status"] != "embedding":
                return {"embedded": 0, "skipped": True}
            kb = repo.get_knowledge_base(conn, tenant_id, document["knowledge_base_id"])
            rows = repo.pending_segments(conn, tenant_id, document_id, first, last)
        if kb is None or kb["status"] != "active" or not rows:
            return {"embedded": 0, "skipped": kb is None or kb["status"] != "active"}
        store = self._store()
        embedded: list[uuid.UUID] = []
        waiting: list[tuple[dict[str, Any], list[float]]] = []

        def save() -> None:
            """Write the vectors embedded so far and count them in the document's progress, so
            progress moves while a batch embeds (and a retry resumes after them)."""
            batch = waiting.copy()
            waiting.clear()
            if not batch:
                return
            ids = [row["id"] for row, _ in batch]
            store.upsert(tenant_id, kb["id"], kb["dimensions"], [
                IndexedSegment(row["id"], document_id, row["text"], vector, document["metadata"], document["tags"],
                               row["enabled"], document_indexed=False) for row, vector in batch])
            with self._db.transaction(tenant_id) as conn:
                current = repo.attempt_is_current(conn, tenant_id, document_id, attempt)
                if current:
                    repo.mark_indexed(conn, tenant_id, ids)
                    repo.refresh_progress(conn, tenant_id, document_id)
            if not current:
                # Deleted or re-indexed while embedding: take back what was just written.
                store.delete_segments(tenant_id, kb["id"], ids)
                raise _Superseded
            embedded.extend(ids)

        def on_batch(_index: int, vectors: list[list[float]]) -> None:
            start = len(embedded) + len(waiting)
            waiting.extend(zip(rows[start:start + len(vectors)], vectors, strict=True))
            if len(waiting) >= _PROGRESS_SEGMENTS:
                save()

        try:
            self._d.gateway().embed(tenant_id, [row["text"] for row in rows], kb["embedding_model"],
                                    on_batch=on_batch)
            save()
        except _Superseded:
            return {"embedded": 0, "skipped": True}
        except Exception as exc:
            permanent = _permanent(exc)
            code, message = _error_text(permanent or exc)
            with self._db.transaction(tenant_id) as conn:
                if permanent is not None:
                    repo.fail_document(conn, tenant_id, document_id, attempt, code, message)
                else:
                    repo.record_error(conn, tenant_id, document_id, code, message)
            if permanent is None or raise_permanent:
                raise
            return {"embedded": len(embedded), "failed": True}
        return {"embedded": len(embedded)}

    @tracer.capture_method(capture_response=False)
    def finish(self, tenant_id: uuid.UUID, document_id: uuid.UUID, attempt: int) -> dict[str, Any]:
        """After the last batch: indexed when every chunk is in the store, else failed with
        the error the batches recorded."""
        with self._db.transaction(tenant_id) as conn:
            document = repo.get_document(conn, tenant_id, document_id, lock=True)
            if document is None or document["attempt"] != attempt or document["status"] != "embedding":
                return {"status": document["status"] if document else "deleted"}
            if repo.has_pending(conn, tenant_id, document_id):
                progress = repo.refresh_progress(conn, tenant_id, document_id) or {}
                missing = int(progress.get("segments_total", 0)) - int(progress.get("segments_done", 0))
                reason = document["error"] or "the batches failed"
                repo.fail_document(conn, tenant_id, document_id, attempt,
                                   document["error_code"] or "document_embedding_incomplete",
                                   f"{missing} of {progress.get('segments_total')} segments could not be "
                                   f"embedded: {reason}")
                return {"status": "failed"}
            # Searchable from now on (a store that keeps its own copy of the status is told
            # first: if that fails, the step is retried and the document is not yet indexed).
            self._store().set_document_indexed(tenant_id, document["knowledge_base_id"], document_id, True)
            now = datetime.now(UTC)
            timings = dict(document["timings"] or {})
            started = document["processing_started_at"] or document["status_changed_at"]
            timings["total_ms"] = int((now - started).total_seconds() * 1000)
            timings["embedding_ms"] = max(0, timings["total_ms"] - sum(
                timings.get(k, 0) for k in ("download_ms", "parsing_ms", "chunking_ms")))
            repo.set_document_state(conn, tenant_id, document_id, attempt, "indexed", timings=timings,
                                    indexed_at=now, error_code=None, error=None)
        return {"status": "indexed"}

    # Sweeper -------------------------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def sweep(self, limit: int = 100) -> dict[str, int]:
        """Documents unchanged in a non-final state past the timeout: retried (the current
        attempt, keeping embedded segments) up to the limit, then failed with the reason.
        Uploads never made are failed once their form has expired (or queued, if the file
        is there after all). Knowledge-base deletions that stopped are started again."""
        settings = self._d.settings
        counts = {"retried": 0, "failed": 0, "deletions_restarted": 0}
        with self._db.transaction() as conn:
            stuck = repo.stuck_documents(conn, settings.ingest_stuck_after_s,
                                         settings.upload_url_ttl_s + settings.ingest_stuck_after_s, limit)
            deleting = repo.stuck_deleting_knowledge_bases(conn, settings.ingest_stuck_after_s, limit)
        queue: IngestQueue | None = None
        for item in stuck:
            tenant_id, document_id, attempt = item["tenant_id"], item["document_id"], item["attempt"]
            message: dict[str, Any] | None = None
            if item["status"] == "pending_upload":
                message = self._sweep_upload(item)
                counts["failed" if message is None else "retried"] += 1
            elif item["retries"] >= settings.ingest_max_retries:
                with self._db.transaction(tenant_id) as conn:
                    document = repo.get_document(conn, tenant_id, document_id)
                    last = f" Last error: {document['error']}" if document and document["error"] else ""
                    minutes = settings.ingest_stuck_after_s // 60
                    if repo.fail_stalled(conn, tenant_id, document_id, attempt, item["status"], "document_stalled",
                                         f"Indexing stopped making progress while {item['status']} (no change "
                                         f"for {minutes} minutes, {item['retries'] + 1} attempts). Reindex to "
                                         f"try again.{last}"):
                        counts["failed"] += 1
            else:
                with self._db.transaction(tenant_id) as conn:
                    row = repo.retry_document(conn, tenant_id, document_id, item["status"], attempt)
                if row is not None:
                    message = {"type": "index", "tenant_id": str(tenant_id), "document_id": str(document_id),
                               "attempt": row["attempt"]}
                    counts["retried"] += 1
            if message is not None:
                queue = queue or self._d.queue()
                queue.send(message)
        arn = settings.knowledge_base_delete_state_machine_arn
        if deleting and arn:
            executions: Executions = self._d.executions()
            for kb in deleting:
                with self._db.transaction(kb["tenant_id"]) as conn:
                    repo.touch_knowledge_base(conn, kb["tenant_id"], kb["knowledge_base_id"])
                executions.start(arn, f"kb-delete-{kb['knowledge_base_id']}",
                                 {"tenant_id": str(kb["tenant_id"]), "knowledge_base_id": str(kb["knowledge_base_id"])},
                                 restart=True)
                counts["deletions_restarted"] += 1
        return counts

    def _sweep_upload(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """A document still waiting for its file after the form expired: indexed if the file
        is there (its event was lost), else failed."""
        tenant_id, document_id = item["tenant_id"], item["document_id"]
        files: DocumentFiles = self._d.files()
        present = files.exists(item["s3_key"])
        with self._db.transaction(tenant_id) as conn:
            if present and repo.mark_uploaded(conn, tenant_id, document_id) is not None:
                return {"type": "index", "tenant_id": str(tenant_id), "document_id": str(document_id), "attempt": 1}
            if not present:
                repo.fail_stalled(conn, tenant_id, document_id, item["attempt"], "pending_upload",
                                  "document_upload_expired",
                                  "No file was uploaded before the upload form expired; add the document again.")
        return None

    # Knowledge-base deletion --------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def purge_knowledge_base(self, tenant_id: uuid.UUID, kb_id: uuid.UUID, time_left_ms: Any,
                             reserve_ms: int = 10_000) -> bool:
        """Remove a deleting knowledge base's vectors, files and rows in batches; True when
        nothing is left (the state machine calls again while False)."""
        with self._db.transaction(tenant_id) as conn:
            kb = repo.get_knowledge_base(conn, tenant_id, kb_id)
        if kb is None:
            return True
        if kb["status"] != "deleting":
            raise RuntimeError(f"knowledge base {kb_id} is not being deleted")
        self._store().delete_knowledge_base(tenant_id, kb_id)
        files: DocumentFiles = self._d.files()
        prefix = document_prefix(tenant_id, kb_id)
        while True:
            removed_files = files.delete_prefix(prefix, 1000)
            with self._db.transaction(tenant_id) as conn:
                removed_rows = repo.delete_documents_batch(conn, tenant_id, kb_id, 200)
                repo.touch_knowledge_base(conn, tenant_id, kb_id)  # progress: the sweeper leaves it be
            if not removed_files and not removed_rows:
                # Once more: a batch embedding while the rows went may have written vectors since.
                self._store().delete_knowledge_base(tenant_id, kb_id)
                with self._db.transaction(tenant_id) as conn:
                    repo.finish_knowledge_base_delete(conn, tenant_id, kb_id)
                return True
            if time_left_ms() < reserve_ms:
                return False
