"""SQL for knowledge bases, documents and segments. Every query names the tenant (row-level
security enforces it a second time)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from shared.db.paging import PageRequest
from shared.db.queries import Row, assignments, one, page_of, rows
from shared.knowledge.types import DocumentStatus, SegmentKind

Conn = Connection[Any]

KB_SORTS = frozenset({"name", "created_at", "updated_at"})
DOCUMENT_SORTS = frozenset({"name", "created_at", "updated_at", "status", "size"})
SEGMENT_SORTS = frozenset({"position", "created_at", "updated_at"})

# Segment ids are derived from their place in the document, so a retried or redelivered
# ingestion writes the same rows (and the same vector-store ids) instead of duplicates.
_SEGMENT_NAMESPACE = uuid.UUID("6f1d8a52-54a4-4f0e-9d56-2a1f4c1b7e21")


def segment_id(document_id: uuid.UUID, kind: SegmentKind, position: int) -> uuid.UUID:
    return uuid.uuid5(_SEGMENT_NAMESPACE, f"{document_id}:{kind}:{position}")


# Knowledge bases -------------------------------------------------------------------------
_KB_COLUMNS = """id, name, description, embedding_model, dimensions, chunking, retrieval, status,
    created_at, updated_at, version,
    (SELECT count(*) FROM documents d WHERE d.knowledge_base_id = knowledge_bases.id
        AND d.deleted_at IS NULL AND d.status <> 'pending_upload') AS document_count,
    (SELECT count(*) FROM segments s JOIN documents d ON d.id = s.document_id
      WHERE s.knowledge_base_id = knowledge_bases.id AND s.kind = 'chunk' AND d.deleted_at IS NULL)
        AS segment_count"""


def insert_knowledge_base(conn: Conn, kb_id: uuid.UUID, tenant_id: uuid.UUID, name: str, description: str,
                          embedding_model: str, dimensions: int, chunking: dict[str, Any],
                          retrieval: dict[str, Any]) -> Row:
    conn.execute("""INSERT INTO knowledge_bases (id, tenant_id, name, description, embedding_model, dimensions,
                                                 chunking, retrieval)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                 (kb_id, tenant_id, name, description, embedding_model, dimensions, Jsonb(chunking), Jsonb(retrieval)))
    row = get_knowledge_base(conn, tenant_id, kb_id)
    assert row is not None
    return row


def get_knowledge_base(conn: Conn, tenant_id: uuid.UUID, kb_id: uuid.UUID, *, lock: bool = False) -> Row | None:
    """A knowledge base that is not deleted (one being deleted is returned, status "deleting")."""
    suffix = " FOR UPDATE" if lock else ""
    if lock:  # FOR UPDATE cannot sit beside the aggregate subqueries
        return one(conn, "SELECT id, status, version FROM knowledge_bases "
                          "WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL" + suffix, (tenant_id, kb_id))
    return one(conn, f"SELECT {_KB_COLUMNS} FROM knowledge_bases WHERE tenant_id = %s AND id = %s "
                      "AND deleted_at IS NULL", (tenant_id, kb_id))


def get_knowledge_bases(conn: Conn, tenant_id: uuid.UUID, kb_ids: Sequence[uuid.UUID]) -> list[Row]:
    return rows(conn, """SELECT id, name, embedding_model, dimensions, retrieval, status FROM knowledge_bases
                          WHERE tenant_id = %s AND id = ANY(%s) AND deleted_at IS NULL""", (tenant_id, list(kb_ids)))


def list_knowledge_bases(conn: Conn, tenant_id: uuid.UUID, page: PageRequest,
                         name: str | None = None) -> tuple[list[Row], int]:
    """``name``: only those whose name contains it, ignoring case."""
    where = "tenant_id = %(tenant)s AND deleted_at IS NULL"
    params: dict[str, Any] = {"tenant": tenant_id}
    if name:
        where += " AND strpos(lower(name), lower(%(name)s)) > 0"
        params["name"] = name
    return page_of(conn, "knowledge_bases", _KB_COLUMNS, where, params, page)


def update_knowledge_base(conn: Conn, tenant_id: uuid.UUID, kb_id: uuid.UUID, values: dict[str, Any],
                          expected_version: int) -> bool:
    """False when the row changed (version) or went away since it was read."""
    clause, params = assignments(values)
    query = sql.SQL("""UPDATE knowledge_bases SET {}, updated_at = now(), version = version + 1
                       WHERE tenant_id = %(_tenant)s AND id = %(_id)s AND deleted_at IS NULL
                         AND status = 'active' AND version = %(_version)s""").format(clause)
    cur = conn.execute(query, {**params, "_tenant": tenant_id, "_id": kb_id, "_version": expected_version})
    return cur.rowcount == 1


def knowledge_base_has_documents(conn: Conn, tenant_id: uuid.UUID, kb_id: uuid.UUID) -> bool:
    row = conn.execute("""SELECT EXISTS (SELECT 1 FROM documents WHERE tenant_id = %s AND knowledge_base_id = %s
                          AND deleted_at IS NULL)""", (tenant_id, kb_id)).fetchone()
    return bool(row and row[0])


def mark_knowledge_base_deleting(conn: Conn, tenant_id: uuid.UUID, kb_id: uuid.UUID) -> bool:
    cur = conn.execute("""UPDATE knowledge_bases SET status = 'deleting', updated_at = now(), version = version + 1
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL AND status = 'active'""",
                       (tenant_id, kb_id))
    return cur.rowcount == 1


def delete_documents_batch(conn: Conn, tenant_id: uuid.UUID, kb_id: uuid.UUID, limit: int) -> int:
    """Hard-delete up to ``limit`` documents of a knowledge base being deleted (segments follow)."""
    cur = conn.execute("""DELETE FROM documents WHERE id IN (
                              SELECT id FROM documents WHERE tenant_id = %s AND knowledge_base_id = %s LIMIT %s)""",
                       (tenant_id, kb_id, limit))
    return cur.rowcount


def finish_knowledge_base_delete(conn: Conn, tenant_id: uuid.UUID, kb_id: uuid.UUID) -> None:
    # Soft-deleted: the name is free again; the retention purge removes the row later.
    conn.execute("""UPDATE knowledge_bases SET deleted_at = now(), updated_at = now(), version = version + 1
                    WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (tenant_id, kb_id))


# Documents -------------------------------------------------------------------------------
_DOC_COLUMNS = """id, tenant_id, knowledge_base_id, name, content_type, size, source, s3_key, content_hash, metadata,
    tags, chunking, status, error_code, error, segments_total, segments_done, tokens, pages, timings, attempt,
    retries, status_changed_at, processing_started_at, created_at, updated_at, indexed_at, version"""


def insert_document(conn: Conn, *, document_id: uuid.UUID, tenant_id: uuid.UUID, kb_id: uuid.UUID, name: str,
                    content_type: str, size: int, source: str, s3_key: str, metadata: dict[str, Any],
                    tags: list[str], chunking: dict[str, Any]) -> Row:
    row = one(conn, f"""INSERT INTO documents (id, tenant_id, knowledge_base_id, name, content_type, size, source,
                                                s3_key, metadata, tags, chunking)
                         VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_DOC_COLUMNS}""",
               (document_id, tenant_id, kb_id, name, content_type, size, source, s3_key, Jsonb(metadata), tags,
                Jsonb(chunking)))
    assert row is not None
    return row


def get_document(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, kb_id: uuid.UUID | None = None,
                 *, lock: bool = False) -> Row | None:
    return one(conn, f"""SELECT {_DOC_COLUMNS} FROM documents
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL
                            AND (%s::uuid IS NULL OR knowledge_base_id = %s::uuid)
                          {"FOR UPDATE" if lock else ""}""", (tenant_id, document_id, kb_id, kb_id))


def list_documents(conn: Conn, tenant_id: uuid.UUID, kb_id: uuid.UUID, status: DocumentStatus | None,
                   page: PageRequest) -> tuple[list[Row], int]:
    where = """tenant_id = %(tenant)s AND knowledge_base_id = %(kb)s AND deleted_at IS NULL
               AND (%(status)s::text IS NULL OR status = %(status)s::text)"""
    return page_of(conn, "documents", _DOC_COLUMNS, where, {"tenant": tenant_id, "kb": kb_id, "status": status}, page)


def update_document_fields(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, values: dict[str, Any],
                           expected_version: int) -> Row | None:
    clause, params = assignments(values)
    query = sql.SQL(f"""UPDATE documents SET {{}}, updated_at = now(), version = version + 1
                        WHERE tenant_id = %(_tenant)s AND id = %(_id)s AND deleted_at IS NULL
                          AND version = %(_version)s RETURNING {_DOC_COLUMNS}""").format(clause)
    return one(conn, query, {**params, "_tenant": tenant_id, "_id": document_id, "_version": expected_version})


def delete_document_row(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID) -> None:
    conn.execute("DELETE FROM documents WHERE tenant_id = %s AND id = %s", (tenant_id, document_id))


def soft_delete_document(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID) -> None:
    conn.execute("DELETE FROM segments WHERE tenant_id = %s AND document_id = %s", (tenant_id, document_id))
    # attempt + 1: an indexing run still under way no longer matches and stops.
    conn.execute("""UPDATE documents SET deleted_at = now(), updated_at = now(), version = version + 1,
                           attempt = attempt + 1, segments_total = 0, segments_done = 0
                    WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (tenant_id, document_id))


def mark_uploaded(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID) -> Row | None:
    """The object is in S3 (the API wrote it); None when its event was already handled."""
    return one(conn, f"""UPDATE documents SET status = 'uploaded', attempt = 1, status_changed_at = now(),
                              updated_at = now()
                          WHERE tenant_id = %s AND id = %s AND status = 'pending_upload'
                          RETURNING {_DOC_COLUMNS}""", (tenant_id, document_id))


def claim_document(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, attempt: int | None) -> Row | None:
    """Move a document waiting for indexing to ``parsing``; None when it is not waiting (a
    duplicate or stale event). ``attempt`` None: an S3 event (the first upload, attempt 1);
    otherwise a message naming the attempt it was sent for."""
    return one(conn, f"""UPDATE documents
                          SET status = 'parsing', attempt = CASE WHEN status = 'pending_upload' THEN 1 ELSE attempt END,
                              error_code = NULL, error = NULL, status_changed_at = now(),
                              processing_started_at = now(), updated_at = now()
                          WHERE tenant_id = %(t)s AND id = %(d)s AND deleted_at IS NULL
                            AND CASE WHEN %(a)s::int IS NULL
                                     THEN status = 'pending_upload' OR (status = 'uploaded' AND attempt = 1)
                                     ELSE status = 'uploaded' AND attempt = %(a)s::int END
                          RETURNING {_DOC_COLUMNS}""", {"t": tenant_id, "d": document_id, "a": attempt})


def set_document_state(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, attempt: int,
                       status: DocumentStatus, **values: Any) -> bool:
    """Advance an attempt's status (and other columns); False when a newer attempt or a
    deletion superseded it."""
    clause, params = assignments(values)
    extra = sql.SQL(", ") + clause if values else sql.SQL("")
    query = sql.SQL("""UPDATE documents SET status = %(_status)s, updated_at = now(),
                              status_changed_at = CASE WHEN status = %(_status)s THEN status_changed_at
                                                       ELSE now() END {}
                       WHERE tenant_id = %(_tenant)s AND id = %(_id)s AND attempt = %(_attempt)s
                         AND deleted_at IS NULL AND status NOT IN ('indexed', 'failed')""").format(extra)
    cur = conn.execute(query, {**params, "_status": status, "_tenant": tenant_id, "_id": document_id,
                               "_attempt": attempt})
    return cur.rowcount == 1


def touch_document(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID) -> None:
    """Progress resets the sweeper's clock: only documents that stop moving are stuck."""
    conn.execute("UPDATE documents SET status_changed_at = now() WHERE tenant_id = %s AND id = %s",
                 (tenant_id, document_id))


def find_duplicate(conn: Conn, tenant_id: uuid.UUID, kb_id: uuid.UUID, document_id: uuid.UUID,
                   content_hash: str) -> Row | None:
    """Held until the caller's transaction ends (which records this document's hash): two
    identical documents indexed at once cannot both pass."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{kb_id}:{content_hash}",))
    return one(conn, """SELECT id, name FROM documents
                         WHERE tenant_id = %s AND knowledge_base_id = %s AND content_hash = %s AND id <> %s
                           AND deleted_at IS NULL AND status <> 'failed'
                         ORDER BY created_at LIMIT 1""", (tenant_id, kb_id, content_hash, document_id))


def reset_for_reindex(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID,
                      chunking: dict[str, Any] | None) -> Row | None:
    conn.execute("DELETE FROM segments WHERE tenant_id = %s AND document_id = %s", (tenant_id, document_id))
    return one(conn, f"""UPDATE documents SET status = 'uploaded', attempt = attempt + 1, retries = 0,
                              chunking = coalesce(%s, chunking), error_code = NULL, error = NULL,
                              segments_total = 0, segments_done = 0, tokens = 0, timings = '{{}}',
                              indexed_at = NULL, status_changed_at = now(), updated_at = now(),
                              version = version + 1
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL RETURNING {_DOC_COLUMNS}""",
               (Jsonb(chunking) if chunking is not None else None, tenant_id, document_id))


def retry_document(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, from_status: DocumentStatus,
                   attempt: int) -> Row | None:
    """The sweeper's retry of the attempt it saw stalled (segments already embedded are kept)."""
    return one(conn, f"""UPDATE documents SET status = 'uploaded', retries = retries + 1, status_changed_at = now(),
                              updated_at = now()
                          WHERE tenant_id = %s AND id = %s AND status = %s AND attempt = %s AND deleted_at IS NULL
                          RETURNING {_DOC_COLUMNS}""", (tenant_id, document_id, from_status, attempt))


def fail_document(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, attempt: int | None, code: str,
                  message: str) -> bool:
    cur = conn.execute("""UPDATE documents SET status = 'failed', error_code = %s, error = %s,
                              status_changed_at = now(), updated_at = now()
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL
                            AND (%s::int IS NULL OR attempt = %s::int) AND status <> 'indexed'""",
                       (code, message[:2000], tenant_id, document_id, attempt, attempt))
    return cur.rowcount == 1


def record_error(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, code: str, message: str) -> None:
    """A transient error seen on the way (the status stays): shown if the retries run out."""
    conn.execute("UPDATE documents SET error_code = %s, error = %s WHERE tenant_id = %s AND id = %s",
                 (code, message[:2000], tenant_id, document_id))


def refresh_progress(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID) -> Row | None:
    """Recount from the segments, so a retried batch never counts twice."""
    return one(conn, """UPDATE documents d SET
                             segments_total = c.total, segments_done = c.done, tokens = c.tokens,
                             status_changed_at = now()
                         FROM (SELECT count(*) FILTER (WHERE kind = 'chunk') AS total,
                                      count(*) FILTER (WHERE kind = 'chunk' AND index_status = 'indexed') AS done,
                                      coalesce(sum(tokens) FILTER (WHERE kind = 'chunk'), 0) AS tokens
                               FROM segments WHERE tenant_id = %(t)s AND document_id = %(d)s) c
                         WHERE d.tenant_id = %(t)s AND d.id = %(d)s
                         RETURNING d.segments_total, d.segments_done, d.tokens""",
                {"t": tenant_id, "d": document_id})


# Segments --------------------------------------------------------------------------------
_SEGMENT_COLUMNS = """id, tenant_id, knowledge_base_id, document_id, kind, position, parent_id, text, tokens, page,
    content_hash, enabled, source, index_status, created_at, updated_at, version"""


def attempt_is_current(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, attempt: int) -> bool:
    """The document is live and still on this indexing attempt (locks it until commit, so a
    delete or re-index waits for the write in progress)."""
    row = conn.execute("""SELECT 1 FROM documents WHERE tenant_id = %s AND id = %s AND attempt = %s
                          AND deleted_at IS NULL AND status NOT IN ('indexed', 'failed') FOR SHARE""",
                       (tenant_id, document_id, attempt)).fetchone()
    return row is not None


def insert_segments(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of (id, tenant, kb, document, kind, position, parent_id, text, tokens, page, hash, source);
    positions already stored are left as they are (redelivery)."""
    with conn.cursor() as cur:
        cur.executemany("""INSERT INTO segments (id, tenant_id, knowledge_base_id, document_id, kind, position,
                                                 parent_id, text, tokens, page, content_hash, source)
                           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                           ON CONFLICT (document_id, kind, position) DO NOTHING""", rows)


def count_chunks(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID) -> int:
    row = conn.execute("SELECT count(*) FROM segments WHERE tenant_id = %s AND document_id = %s AND kind = 'chunk'",
                       (tenant_id, document_id)).fetchone()
    return int(row[0]) if row else 0


def pending_segments(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, first: int, last: int) -> list[Row]:
    """Chunks at positions [first, last) not yet in the vector store."""
    return rows(conn, """SELECT id, text, enabled FROM segments
                          WHERE tenant_id = %s AND document_id = %s AND kind = 'chunk' AND index_status = 'pending'
                            AND position >= %s AND position < %s ORDER BY position""",
                 (tenant_id, document_id, first, last))


def has_pending(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID) -> bool:
    row = conn.execute("""SELECT EXISTS (SELECT 1 FROM segments WHERE tenant_id = %s AND document_id = %s
                          AND kind = 'chunk' AND index_status = 'pending')""", (tenant_id, document_id)).fetchone()
    return bool(row and row[0])


def mark_indexed(conn: Conn, tenant_id: uuid.UUID, segment_ids: Sequence[uuid.UUID]) -> None:
    conn.execute("UPDATE segments SET index_status = 'indexed' WHERE tenant_id = %s AND id = ANY(%s)",
                 (tenant_id, list(segment_ids)))


def list_segments(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, kind: SegmentKind | None,
                  enabled: bool | None, page: PageRequest) -> tuple[list[Row], int]:
    where = """tenant_id = %(tenant)s AND document_id = %(doc)s
               AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
               AND (%(enabled)s::boolean IS NULL OR enabled = %(enabled)s::boolean)"""
    return page_of(conn, "segments", _SEGMENT_COLUMNS, where,
                   {"tenant": tenant_id, "doc": document_id, "kind": kind, "enabled": enabled}, page)


def get_segment(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, seg_id: uuid.UUID) -> Row | None:
    return one(conn, f"""SELECT {_SEGMENT_COLUMNS} FROM segments
                          WHERE tenant_id = %s AND document_id = %s AND id = %s""", (tenant_id, document_id, seg_id))


def delete_segment(conn: Conn, tenant_id: uuid.UUID, seg_id: uuid.UUID) -> None:
    conn.execute("DELETE FROM segments WHERE tenant_id = %s AND id = %s", (tenant_id, seg_id))


def next_position(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID) -> int:
    row = conn.execute("""SELECT coalesce(max(position) + 1, 0) FROM segments
                          WHERE tenant_id = %s AND document_id = %s AND kind = 'chunk'""",
                       (tenant_id, document_id)).fetchone()
    return int(row[0]) if row else 0


def update_segment(conn: Conn, tenant_id: uuid.UUID, seg_id: uuid.UUID, values: dict[str, Any],
                   expected_version: int) -> Row | None:
    clause, params = assignments(values)
    query = sql.SQL(f"""UPDATE segments SET {{}}, updated_at = now(), version = version + 1
                        WHERE tenant_id = %(_tenant)s AND id = %(_id)s AND version = %(_version)s
                        RETURNING {_SEGMENT_COLUMNS}""").format(clause)
    return one(conn, query, {**params, "_tenant": tenant_id, "_id": seg_id, "_version": expected_version})


def segments_for_hits(conn: Conn, tenant_id: uuid.UUID, segment_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Row]:
    """What a retrieval result shows: the segment, its parent's text, its document."""
    found = rows(conn, """SELECT s.id, s.knowledge_base_id, s.document_id, s.position, s.page, s.text, s.parent_id,
                                 p.text AS parent_text, d.name AS document_name, d.metadata, d.tags
                          FROM segments s
                          JOIN documents d ON d.id = s.document_id AND d.tenant_id = s.tenant_id
                          LEFT JOIN segments p ON p.id = s.parent_id AND p.tenant_id = s.tenant_id
                          WHERE s.tenant_id = %s AND s.id = ANY(%s) AND s.enabled
                            AND d.deleted_at IS NULL""", (tenant_id, list(segment_ids)))
    return {row["id"]: row for row in found}


def stuck_documents(conn: Conn, older_than_s: int, upload_older_than_s: int, limit: int) -> list[Row]:
    return rows(conn, "SELECT * FROM documents_stuck(make_interval(secs => %s), make_interval(secs => %s), %s)",
                 (older_than_s, upload_older_than_s, limit))


def fail_stalled(conn: Conn, tenant_id: uuid.UUID, document_id: uuid.UUID, attempt: int,
                 status: DocumentStatus, code: str, message: str) -> bool:
    """Fail exactly the stalled attempt the sweeper saw (a re-index since then is left alone)."""
    cur = conn.execute("""UPDATE documents SET status = 'failed', error_code = %s, error = %s,
                              status_changed_at = now(), updated_at = now()
                          WHERE tenant_id = %s AND id = %s AND attempt = %s AND status = %s AND deleted_at IS NULL""",
                       (code, message[:2000], tenant_id, document_id, attempt, status))
    return cur.rowcount == 1


def stuck_deleting_knowledge_bases(conn: Conn, older_than_s: int, limit: int) -> list[Row]:
    return rows(conn, "SELECT * FROM knowledge_bases_stuck_deleting(make_interval(secs => %s), %s)",
                 (older_than_s, limit))


def touch_knowledge_base(conn: Conn, tenant_id: uuid.UUID, kb_id: uuid.UUID) -> None:
    conn.execute("UPDATE knowledge_bases SET updated_at = now() WHERE tenant_id = %s AND id = %s", (tenant_id, kb_id))
