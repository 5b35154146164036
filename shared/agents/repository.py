"""SQL for agents and their published versions. Every query names the tenant; built-ins
(tenant_id NULL) are read alongside a tenant's own agents, and row-level security keeps them
read-only a second time."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from shared.db.paging import PageRequest
from shared.db.queries import Row, assignments, one, page_of, rows

Conn = Connection[Any]

AGENT_SORTS = frozenset({"name", "created_at", "updated_at", "builtin"})
VERSION_SORTS = frozenset({"number", "created_at"})

_AGENT_COLUMNS = """id, tenant_id, slug, (tenant_id IS NULL) AS builtin, name, description, avatar, config,
    published_version, published_at, created_at, updated_at, version"""
_VERSION_COLUMNS = "id, agent_id, number, name, description, avatar, config, note, published_by, created_at"
# Live agents a tenant sees: its own and the built-ins.
_VISIBLE = "deleted_at IS NULL AND (tenant_id IS NULL OR tenant_id = %(tenant)s)"


# Agents ----------------------------------------------------------------------------------
def get_agent(conn: Conn, tenant_id: uuid.UUID, ref: uuid.UUID | str, *, lock: bool = False) -> Row | None:
    """A live agent the tenant sees, by id or built-in slug (``lock``: its own agents only)."""
    by = "slug = %(ref)s" if isinstance(ref, str) else "id = %(ref)s"
    scope = "tenant_id = %(tenant)s AND deleted_at IS NULL" if lock else _VISIBLE
    return one(conn, f"SELECT {_AGENT_COLUMNS} FROM agents WHERE {by} AND {scope}"
                      + (" FOR UPDATE" if lock else ""), {"ref": ref, "tenant": tenant_id})


def chat_agents(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, limit: int) -> list[Row]:
    """The live agents the tenant can chat with (published, or built-in), oldest first; only
    ``agent_id`` when given."""
    return rows(conn, f"""SELECT {_AGENT_COLUMNS} FROM agents
                          WHERE {_VISIBLE} AND (tenant_id IS NULL OR published_version IS NOT NULL)
                            AND (%(agent)s::uuid IS NULL OR id = %(agent)s::uuid)
                          ORDER BY (tenant_id IS NOT NULL), created_at, id LIMIT %(limit)s""",
                {"tenant": tenant_id, "agent": agent_id, "limit": limit})


def insert_agent(conn: Conn, *, agent_id: uuid.UUID, tenant_id: uuid.UUID, name: str, description: str,
                 avatar: str | None, config: dict[str, Any]) -> Row:
    row = one(conn, f"""INSERT INTO agents (id, tenant_id, name, description, avatar, config)
                         VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_AGENT_COLUMNS}""",
               (agent_id, tenant_id, name, description, avatar, Jsonb(config)))
    assert row is not None
    return row


def list_agents(conn: Conn, tenant_id: uuid.UUID, builtin: bool | None, page: PageRequest, *,
                published: bool | None = None, agent_id: uuid.UUID | None = None) -> tuple[list[Row], int]:
    """A page of the live agents the tenant sees; ``published``: only those with (or without) a
    published version; ``agent_id``: only that one (a key bound to it)."""
    where = (_VISIBLE + " AND (%(builtin)s::boolean IS NULL OR (tenant_id IS NULL) = %(builtin)s::boolean)"
             " AND (%(published)s::boolean IS NULL OR (published_version IS NOT NULL) = %(published)s::boolean)"
             " AND (%(agent)s::uuid IS NULL OR id = %(agent)s::uuid)")
    return page_of(conn, "agents", _AGENT_COLUMNS, where,
                   {"tenant": tenant_id, "builtin": builtin, "published": published, "agent": agent_id}, page)


def update_agent(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, values: dict[str, Any],
                 expected_version: int) -> Row | None:
    """None when the row changed (version) or went away since it was read."""
    clause, params = assignments(values)
    query = sql.SQL(f"""UPDATE agents SET {{}}, updated_at = now(), version = version + 1
                        WHERE tenant_id = %(_tenant)s AND id = %(_id)s AND deleted_at IS NULL
                          AND version = %(_version)s RETURNING {_AGENT_COLUMNS}""").format(clause)
    return one(conn, query, {**params, "_tenant": tenant_id, "_id": agent_id, "_version": expected_version})


def soft_delete_agent(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    cur = conn.execute("""UPDATE agents SET deleted_at = now(), updated_at = now(), version = version + 1
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (tenant_id, agent_id))
    return cur.rowcount == 1


def names_like(conn: Conn, tenant_id: uuid.UUID, prefix: str) -> set[str]:
    """Lower-cased names of the tenant's live agents starting with ``prefix`` (copy naming)."""
    escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute("""SELECT lower(name) FROM agents WHERE tenant_id = %s AND deleted_at IS NULL
                           AND lower(name) LIKE %s""", (tenant_id, escaped + "%")).fetchall()
    return {r[0] for r in rows}


def mark_published(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, number: int) -> Row | None:
    # Not a draft edit: version (the draft's optimistic lock) and updated_at stay as they are.
    return one(conn, f"""UPDATE agents SET published_version = %s, published_at = now()
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL RETURNING {_AGENT_COLUMNS}""",
                (number, tenant_id, agent_id))


def active_knowledge_bases(conn: Conn, tenant_id: uuid.UUID, kb_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = conn.execute("""SELECT id FROM knowledge_bases WHERE tenant_id = %s AND id = ANY(%s)
                           AND deleted_at IS NULL AND status = 'active'""", (tenant_id, kb_ids)).fetchall()
    return {r[0] for r in rows}


# Versions --------------------------------------------------------------------------------
def insert_version(conn: Conn, *, version_id: uuid.UUID, tenant_id: uuid.UUID, agent: Row, number: int,
                   config: dict[str, Any], note: str, published_by: uuid.UUID | None) -> Row:
    row = one(conn, f"""INSERT INTO agent_versions (id, tenant_id, agent_id, number, name, description, avatar,
                                                     config, note, published_by)
                         VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_VERSION_COLUMNS}""",
               (version_id, tenant_id, agent["id"], number, agent["name"], agent["description"], agent["avatar"],
                Jsonb(config), note, published_by))
    assert row is not None
    return row


def next_version_number(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> int:
    row = conn.execute("SELECT coalesce(max(number), 0) + 1 FROM agent_versions WHERE tenant_id = %s AND agent_id = %s",
                       (tenant_id, agent_id)).fetchone()
    return int(row[0]) if row else 1


def get_version(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, number: int) -> Row | None:
    return one(conn, f"""SELECT {_VERSION_COLUMNS} FROM agent_versions
                          WHERE tenant_id = %s AND agent_id = %s AND number = %s""", (tenant_id, agent_id, number))


def published_versions(conn: Conn, tenant_id: uuid.UUID, agent_ids: list[uuid.UUID]) -> list[Row]:
    """The version each of ``agent_ids`` currently publishes (agents never published: none)."""
    return rows(conn, f"""SELECT {_VERSION_COLUMNS} FROM agent_versions
                          WHERE tenant_id = %(tenant)s AND (agent_id, number) IN (
                              SELECT id, published_version FROM agents
                              WHERE tenant_id = %(tenant)s AND id = ANY(%(ids)s) AND published_version IS NOT NULL)""",
                {"tenant": tenant_id, "ids": agent_ids})


def list_versions(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, page: PageRequest) -> tuple[list[Row], int]:
    return page_of(conn, "agent_versions", _VERSION_COLUMNS, "tenant_id = %(tenant)s AND agent_id = %(agent)s",
                 {"tenant": tenant_id, "agent": agent_id}, page)


# Agent variables' values, per end user (docs/variables.md) -------------------------------------
def variable_values(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, end_user: str) -> list[Row]:
    return rows(conn, """SELECT name, value, created_at, updated_at FROM agent_variable_values
                          WHERE tenant_id = %s AND agent_id = %s AND end_user = %s ORDER BY name""",
                (tenant_id, agent_id, end_user))


def set_variable_value(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, end_user: str, name: str,
                       value: str) -> None:
    conn.execute("""INSERT INTO agent_variable_values (tenant_id, agent_id, end_user, name, value)
                    VALUES (%s, %s, %s, %s, %s)
                    ON CONFLICT (agent_id, end_user, name)
                    DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
                 (tenant_id, agent_id, end_user, name, value))


def clear_variable_value(conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, end_user: str, name: str) -> None:
    conn.execute("DELETE FROM agent_variable_values WHERE tenant_id = %s AND agent_id = %s AND end_user = %s "
                 "AND name = %s", (tenant_id, agent_id, end_user, name))
