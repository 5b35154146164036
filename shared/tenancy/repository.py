"""SQL for tenants, members and API keys. Every query filters by tenant explicitly, and
row-level security would stop any that forgot."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import dict_row

from shared.db.paging import PageRequest

Row = dict[str, Any]

_MEMBER_COLUMNS = """m.id, m.user_id, u.email, m.name, m.role, m.created_at, m.updated_at, m.version"""
_KEY_COLUMNS = """id, name, prefix, user_id, scopes, resource_type, resource_id, expires_at,
                  last_used_at, created_at"""

TENANT_SORTS = frozenset({"created_at", "updated_at", "name", "status"})
MEMBER_SORTS = frozenset({"created_at", "updated_at", "role", "email", "name"})
API_KEY_SORTS = frozenset({"created_at", "name", "expires_at", "last_used_at"})


def _fetch(conn: Connection[Any], query: Any, params: Any = ()) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _fetch_one(conn: Connection[Any], query: Any, params: Any = ()) -> Row | None:
    rows = _fetch(conn, query, params)
    return rows[0] if rows else None


# Tenants ------------------------------------------------------------------------------
def insert_tenant(conn: Connection[Any], tenant_id: uuid.UUID, name: str) -> Row:
    row = _fetch_one(conn, """INSERT INTO tenants (id, name) VALUES (%s, %s)
                              RETURNING id, name, status, created_at, updated_at""", (tenant_id, name))
    assert row is not None
    return row


def get_tenant(conn: Connection[Any], tenant_id: uuid.UUID) -> Row | None:
    return _fetch_one(conn, """SELECT id, name, status, created_at, updated_at FROM tenants
                               WHERE id = %s AND deleted_at IS NULL""", (tenant_id,))


def list_tenants(conn: Connection[Any], page: PageRequest) -> tuple[list[Row], int]:
    """Every live tenant (the platform admin's view): through a definer function, since
    row-level security shows a transaction one tenant only."""
    columns = [column for column, _ in page.order]
    descending = [desc for _, desc in page.order]
    rows = _fetch(conn, "SELECT * FROM platform_list_tenants(%s, %s, %s, %s)",
                  (columns, descending, page.limit, page.offset))
    if rows:
        total = int(rows[0]["total"])
    else:
        row = conn.execute("SELECT platform_count_tenants()").fetchone()
        total = int(row[0]) if row else 0
    for row in rows:
        row.pop("total", None)
    return rows, total


# Users and members -----------------------------------------------------------------------
def ensure_user(conn: Connection[Any], user_id: uuid.UUID, email: str, name: str) -> uuid.UUID:
    row = conn.execute("SELECT ensure_user(%s, %s, %s)", (user_id, email, name)).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def insert_member(conn: Connection[Any], member_id: uuid.UUID, tenant_id: uuid.UUID,
                  user_id: uuid.UUID, role: str, name: str = "") -> None:
    conn.execute("INSERT INTO members (id, tenant_id, user_id, role, name) VALUES (%s, %s, %s, %s, %s)",
                 (member_id, tenant_id, user_id, role, name))


def get_member(conn: Connection[Any], tenant_id: uuid.UUID, member_id: uuid.UUID, *,
               for_update: bool = False) -> Row | None:
    lock = " FOR UPDATE OF m" if for_update else ""
    return _fetch_one(conn, f"""SELECT {_MEMBER_COLUMNS} FROM members m JOIN users u ON u.id = m.user_id
                                WHERE m.tenant_id = %s AND m.id = %s AND m.deleted_at IS NULL{lock}""",
                      (tenant_id, member_id))


def get_member_by_user(conn: Connection[Any], tenant_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
    return _fetch_one(conn, f"""SELECT {_MEMBER_COLUMNS} FROM members m JOIN users u ON u.id = m.user_id
                                WHERE m.tenant_id = %s AND m.user_id = %s AND m.deleted_at IS NULL""",
                      (tenant_id, user_id))


def list_members(conn: Connection[Any], tenant_id: uuid.UUID, page: PageRequest) -> tuple[list[Row], int]:
    columns = {"email": "u"}
    order = sql.SQL(", ").join(
        [sql.SQL("{}.{} {}").format(sql.Identifier(columns.get(col, "m")), sql.Identifier(col),
                                    sql.SQL("DESC" if desc else "ASC")) for col, desc in page.order]
        + [sql.SQL("m.id ASC")])
    query = sql.SQL(f"""SELECT {_MEMBER_COLUMNS}, count(*) OVER () AS total
                        FROM members m JOIN users u ON u.id = m.user_id
                        WHERE m.tenant_id = %s AND m.deleted_at IS NULL
                        ORDER BY {{}} LIMIT %s OFFSET %s""").format(order)
    rows = _fetch(conn, query, (tenant_id, page.limit, page.offset))
    total = rows[0].pop("total") if rows else count_live(conn, "members", tenant_id)
    for row in rows:
        row.pop("total", None)
    return rows, int(total)


def lock_owners(conn: Connection[Any], tenant_id: uuid.UUID) -> list[uuid.UUID]:
    """Owner member ids, locked: two concurrent demotions cannot both pass the last-owner check."""
    rows = conn.execute("""SELECT id FROM members WHERE tenant_id = %s AND role = 'owner'
                           AND deleted_at IS NULL ORDER BY id FOR UPDATE""", (tenant_id,)).fetchall()
    return [row[0] for row in rows]


def update_member_role(conn: Connection[Any], tenant_id: uuid.UUID, member_id: uuid.UUID,
                       role: str, version: int | None) -> bool:
    cur = conn.execute("""UPDATE members SET role = %s, version = version + 1, updated_at = now()
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL
                            AND (%s::int IS NULL OR version = %s::int)""",
                       (role, tenant_id, member_id, version, version))
    return cur.rowcount == 1


def soft_delete_member(conn: Connection[Any], tenant_id: uuid.UUID, member_id: uuid.UUID) -> None:
    conn.execute("""UPDATE members SET deleted_at = now(), updated_at = now(), version = version + 1
                    WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (tenant_id, member_id))


def count_live(conn: Connection[Any], table: str, tenant_id: uuid.UUID, user_id: uuid.UUID | None = None) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s AND deleted_at IS NULL").format(
        sql.Identifier(table))
    params: tuple[Any, ...] = (tenant_id,)
    if user_id is not None:
        query = sql.SQL("{} AND user_id = %s").format(query)
        params = (tenant_id, user_id)
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


# API keys --------------------------------------------------------------------------------
def insert_api_key(conn: Connection[Any], *, key_id: uuid.UUID, tenant_id: uuid.UUID, user_id: uuid.UUID,
                   name: str, token_hash: bytes, prefix: str, scopes: list[str],
                   resource_type: str | None, resource_id: uuid.UUID | None,
                   expires_at: datetime | None) -> Row:
    row = _fetch_one(conn, f"""INSERT INTO api_keys (id, tenant_id, user_id, name, token_hash, prefix, scopes,
                                                     resource_type, resource_id, expires_at)
                               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                               RETURNING {_KEY_COLUMNS}""",
                     (key_id, tenant_id, user_id, name, token_hash, prefix, scopes, resource_type,
                      resource_id, expires_at))
    assert row is not None
    return row


def list_api_keys(conn: Connection[Any], tenant_id: uuid.UUID, user_id: uuid.UUID | None,
                  page: PageRequest) -> tuple[list[Row], int]:
    order = sql.SQL(", ").join(
        [sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL("DESC NULLS LAST" if desc else "ASC NULLS LAST"))
         for col, desc in page.order] + [sql.SQL("id ASC")])
    query = sql.SQL(f"""SELECT {_KEY_COLUMNS}, count(*) OVER () AS total FROM api_keys
                        WHERE tenant_id = %s AND deleted_at IS NULL AND (%s::uuid IS NULL OR user_id = %s::uuid)
                        ORDER BY {{}} LIMIT %s OFFSET %s""").format(order)
    rows = _fetch(conn, query, (tenant_id, user_id, user_id, page.limit, page.offset))
    total = rows[0]["total"] if rows else count_live(conn, "api_keys", tenant_id, user_id)
    for row in rows:
        row.pop("total", None)
    return rows, int(total)


def get_api_key(conn: Connection[Any], tenant_id: uuid.UUID, key_id: uuid.UUID) -> Row | None:
    return _fetch_one(conn, f"""SELECT {_KEY_COLUMNS} FROM api_keys
                                WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (tenant_id, key_id))


def revoke_api_keys(conn: Connection[Any], tenant_id: uuid.UUID, *, key_id: uuid.UUID | None = None,
                    user_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Revoke (and soft-delete) one key, or every live key of a user; returns the ids."""
    rows = conn.execute("""UPDATE api_keys SET revoked_at = now(), deleted_at = now(), updated_at = now(),
                                  version = version + 1
                           WHERE tenant_id = %s AND deleted_at IS NULL
                             AND (%s::uuid IS NULL OR id = %s::uuid)
                             AND (%s::uuid IS NULL OR user_id = %s::uuid)
                           RETURNING id""", (tenant_id, key_id, key_id, user_id, user_id)).fetchall()
    return [row[0] for row in rows]


def live_key_ids(conn: Connection[Any], tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[uuid.UUID]:
    rows = conn.execute("""SELECT id FROM api_keys WHERE tenant_id = %s AND user_id = %s
                           AND deleted_at IS NULL""", (tenant_id, user_id)).fetchall()
    return [row[0] for row in rows]


# Auth (SECURITY DEFINER: no tenant is known yet) -------------------------------------------
def resolve_token(conn: Connection[Any], token_hash: bytes) -> Row | None:
    return _fetch_one(conn, "SELECT * FROM auth_resolve_token(%s)", (token_hash,))


def touch_token(conn: Connection[Any], token_id: uuid.UUID) -> None:
    conn.execute("SELECT auth_touch_token(%s)", (token_id,))
