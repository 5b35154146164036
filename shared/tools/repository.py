"""SQL for tool providers. Every query names the tenant; row-level security checks it again."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from shared.db.paging import PageRequest
from shared.db.queries import Row, assignments, one, page_of, rows

Conn = Connection[Any]

PROVIDER_SORTS = frozenset({"name", "kind", "created_at", "updated_at"})

_SUMMARY = """id, tenant_id, name, kind, description, base_url, url, auth, credentials IS NOT NULL AS has_credentials,
    timeout_s, tool_timeouts, created_at, updated_at, version"""
_FULL = _SUMMARY + ", document, operations"
_LIVE = "tenant_id = %(tenant)s AND deleted_at IS NULL"
_JSON_COLUMNS = frozenset({"document", "operations", "auth", "tool_timeouts"})


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: Jsonb(v) if k in _JSON_COLUMNS and v is not None else v for k, v in values.items()}


def get_provider(conn: Conn, tenant_id: uuid.UUID, provider_id: uuid.UUID, *, full: bool = True) -> Row | None:
    return one(conn, f"SELECT {_FULL if full else _SUMMARY} FROM tool_providers WHERE id = %(id)s AND {_LIVE}",
               {"id": provider_id, "tenant": tenant_id})


def get_credentials(conn: Conn, tenant_id: uuid.UUID, provider_id: uuid.UUID) -> bytes | None:
    row = conn.execute("SELECT credentials FROM tool_providers WHERE id = %s AND tenant_id = %s AND deleted_at IS NULL",
                       (provider_id, tenant_id)).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None


def insert_provider(conn: Conn, *, provider_id: uuid.UUID, tenant_id: uuid.UUID, values: dict[str, Any],
                    credentials: bytes | None, created_by: uuid.UUID | None) -> Row:
    columns = ["id", "tenant_id", "credentials", "created_by", *values]
    params = {"id": provider_id, "tenant_id": tenant_id, "credentials": credentials, "created_by": created_by,
              **_values(values)}
    query = sql.SQL("INSERT INTO tool_providers ({}) VALUES ({}) RETURNING " + _FULL).format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.SQL(", ").join(sql.Placeholder(c) for c in columns))
    row = one(conn, query, params)
    assert row is not None
    return row


def list_providers(conn: Conn, tenant_id: uuid.UUID, kind: str | None, page: PageRequest) -> tuple[list[Row], int]:
    where = _LIVE + " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
    return page_of(conn, "tool_providers", _SUMMARY, where, {"tenant": tenant_id, "kind": kind}, page)


def all_providers(conn: Conn, tenant_id: uuid.UUID, ids: list[uuid.UUID] | None = None) -> list[Row]:
    """Live providers (all of the tenant, or those of ``ids``), with their operations."""
    return rows(conn, f"SELECT {_FULL} FROM tool_providers WHERE {_LIVE} "
                      "AND (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s)) ORDER BY created_at",
                {"tenant": tenant_id, "ids": ids})


def update_provider(conn: Conn, tenant_id: uuid.UUID, provider_id: uuid.UUID, values: dict[str, Any],
                    credentials: bytes | None, replace_credentials: bool, expected_version: int) -> Row | None:
    """None when the row changed (version) or went away since it was read."""
    clause, params = assignments(_values(values)) if values else (sql.SQL("name = name"), {})
    query = sql.SQL(f"""UPDATE tool_providers SET {{}},
                            credentials = CASE WHEN %(_replace)s THEN %(_credentials)s ELSE credentials END,
                            updated_at = now(), version = version + 1
                        WHERE tenant_id = %(_tenant)s AND id = %(_id)s AND deleted_at IS NULL
                          AND version = %(_version)s RETURNING {_FULL}""").format(clause)
    return one(conn, query, {**params, "_replace": replace_credentials, "_credentials": credentials,
                             "_tenant": tenant_id, "_id": provider_id, "_version": expected_version})


def soft_delete_provider(conn: Conn, tenant_id: uuid.UUID, provider_id: uuid.UUID) -> bool:
    cur = conn.execute("""UPDATE tool_providers SET deleted_at = now(), updated_at = now(), version = version + 1
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (tenant_id, provider_id))
    return cur.rowcount == 1
