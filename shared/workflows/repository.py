"""SQL for workflows and their published versions. Every query names the tenant; row-level
security filters a second time."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from shared.db.paging import PageRequest
from shared.db.queries import Row, assignments, one, page_of

Conn = Connection[Any]

WORKFLOW_SORTS = frozenset({"name", "created_at", "updated_at"})
VERSION_SORTS = frozenset({"number", "created_at"})

_SUMMARY_COLUMNS = """id, tenant_id, name, description, published_version, published_at, created_by, updated_by,
    created_at, updated_at, version"""
_WORKFLOW_COLUMNS = _SUMMARY_COLUMNS + ", draft"
_VERSION_SUMMARY_COLUMNS = "id, workflow_id, number, name, description, note, created_by, created_at"
_VERSION_COLUMNS = _VERSION_SUMMARY_COLUMNS + ", document"
_LIVE = "tenant_id = %(tenant)s AND deleted_at IS NULL"


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching itself anywhere (wildcards escaped)."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# Workflows ------------------------------------------------------------------------------------
def get_workflow(conn: Conn, tenant_id: uuid.UUID, workflow_id: uuid.UUID, *, lock: bool = False) -> Row | None:
    return one(conn, f"SELECT {_WORKFLOW_COLUMNS} FROM workflows WHERE id = %(id)s AND {_LIVE}"
                     + (" FOR UPDATE" if lock else ""), {"id": workflow_id, "tenant": tenant_id})


def insert_workflow(conn: Conn, *, workflow_id: uuid.UUID, tenant_id: uuid.UUID, name: str, description: str,
                    draft: dict[str, Any], user_id: uuid.UUID | None) -> Row:
    row = one(conn, f"""INSERT INTO workflows (id, tenant_id, name, description, draft, created_by, updated_by)
                         VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_WORKFLOW_COLUMNS}""",
               (workflow_id, tenant_id, name, description, Jsonb(draft), user_id, user_id))
    assert row is not None
    return row


def list_workflows(conn: Conn, tenant_id: uuid.UUID, name: str | None, page: PageRequest) -> tuple[list[Row], int]:
    where = _LIVE + " AND (%(name)s::text IS NULL OR lower(name) LIKE %(name)s::text)"
    return page_of(conn, "workflows", _SUMMARY_COLUMNS, where,
                   {"tenant": tenant_id, "name": _like(name) if name else None}, page)


def update_workflow(conn: Conn, tenant_id: uuid.UUID, workflow_id: uuid.UUID, values: dict[str, Any],
                    expected_version: int) -> Row | None:
    """None when the row changed (version) or went away since it was read."""
    clause, params = assignments(values)
    query = sql.SQL(f"""UPDATE workflows SET {{}}, updated_at = now(), version = version + 1
                        WHERE id = %(_id)s AND tenant_id = %(_tenant)s AND deleted_at IS NULL
                          AND version = %(_version)s RETURNING {_WORKFLOW_COLUMNS}""").format(clause)
    return one(conn, query, {**params, "_tenant": tenant_id, "_id": workflow_id, "_version": expected_version})


def soft_delete_workflow(conn: Conn, tenant_id: uuid.UUID, workflow_id: uuid.UUID, user_id: uuid.UUID | None) -> bool:
    cur = conn.execute("""UPDATE workflows SET deleted_at = now(), updated_at = now(), updated_by = %s,
                                 version = version + 1
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (user_id, tenant_id, workflow_id))
    return cur.rowcount == 1


def find_workflow(conn: Conn, tenant_id: uuid.UUID, id_or_name: str) -> Row | None:
    """A live workflow of the tenant by id, else by name (ignoring case)."""
    try:
        by_id = get_workflow(conn, tenant_id, uuid.UUID(id_or_name))
    except ValueError:
        by_id = None
    if by_id is not None:
        return by_id
    return one(conn, f"SELECT {_WORKFLOW_COLUMNS} FROM workflows WHERE lower(name) = lower(%(name)s) AND {_LIVE}",
               {"name": id_or_name, "tenant": tenant_id})


def names_like(conn: Conn, tenant_id: uuid.UUID, prefix: str) -> set[str]:
    """Lower-cased names of the tenant's live workflows starting with ``prefix``."""
    pattern = _like(prefix)[1:]
    rows = conn.execute("""SELECT lower(name) FROM workflows WHERE tenant_id = %s AND deleted_at IS NULL
                           AND lower(name) LIKE %s""", (tenant_id, pattern)).fetchall()
    return {r[0] for r in rows}


def mark_published(conn: Conn, tenant_id: uuid.UUID, workflow_id: uuid.UUID, number: int) -> None:
    # Not a draft edit: version (the draft's optimistic lock) and updated_at stay as they are.
    conn.execute("""UPDATE workflows SET published_version = %s, published_at = now()
                    WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (number, tenant_id, workflow_id))


# What publishing checks a document's references against -------------------------------------
def active_knowledge_bases(conn: Conn, tenant_id: uuid.UUID, kb_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = conn.execute("""SELECT id FROM knowledge_bases WHERE tenant_id = %s AND id = ANY(%s)
                           AND deleted_at IS NULL AND status = 'active'""", (tenant_id, kb_ids)).fetchall()
    return {r[0] for r in rows}


def chat_model_names(conn: Conn, tenant_id: uuid.UUID) -> list[str]:
    """The live models the tenant may chat with: its own and the platform's."""
    rows = conn.execute("""SELECT name FROM models WHERE deleted_at IS NULL
                           AND (tenant_id IS NULL OR tenant_id = %s) AND spec->'capabilities' ? 'chat'
                           ORDER BY tenant_id NULLS LAST, name""", (tenant_id,)).fetchall()
    return [r[0] for r in rows]


# Versions ---------------------------------------------------------------------------------------
def insert_version(conn: Conn, *, version_id: uuid.UUID, tenant_id: uuid.UUID, workflow: Row, number: int,
                   document: dict[str, Any], note: str, user_id: uuid.UUID | None) -> Row:
    row = one(conn, f"""INSERT INTO workflow_versions (id, tenant_id, workflow_id, number, name, description,
                                                        document, note, created_by)
                         VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_VERSION_COLUMNS}""",
               (version_id, tenant_id, workflow["id"], number, workflow["name"], workflow["description"],
                Jsonb(document), note, user_id))
    assert row is not None
    return row


def next_version_number(conn: Conn, tenant_id: uuid.UUID, workflow_id: uuid.UUID) -> int:
    row = conn.execute("""SELECT coalesce(max(number), 0) + 1 FROM workflow_versions
                          WHERE tenant_id = %s AND workflow_id = %s""", (tenant_id, workflow_id)).fetchone()
    return int(row[0]) if row else 1


def get_version(conn: Conn, tenant_id: uuid.UUID, workflow_id: uuid.UUID, number: int) -> Row | None:
    return one(conn, f"""SELECT {_VERSION_COLUMNS} FROM workflow_versions
                          WHERE tenant_id = %s AND workflow_id = %s AND number = %s""",
               (tenant_id, workflow_id, number))


def list_versions(conn: Conn, tenant_id: uuid.UUID, workflow_id: uuid.UUID,
                  page: PageRequest) -> tuple[list[Row], int]:
    return page_of(conn, "workflow_versions", _VERSION_SUMMARY_COLUMNS,
                   "tenant_id = %(tenant)s AND workflow_id = %(workflow)s",
                   {"tenant": tenant_id, "workflow": workflow_id}, page)
