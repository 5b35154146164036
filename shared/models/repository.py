"""SQL for models, tenant defaults, usage records and quotas."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.db.paging import PageRequest

Row = dict[str, Any]

_MODEL_COLUMNS = "id, tenant_id, name, spec, source, credentials IS NOT NULL AS has_credentials, " \
                 "created_at, updated_at, version"
MODEL_SORTS = frozenset({"name", "created_at", "updated_at"})


def _rows(conn: Connection[Any], query: Any, params: Any = ()) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else []


def refresh_catalog(conn: Connection[Any], items: list[dict[str, Any]]) -> Row:
    return _rows(conn, "SELECT * FROM models_refresh(%s)", (Jsonb(items),))[0]


def get_model(conn: Connection[Any], tenant_id: uuid.UUID, name: str) -> Row | None:
    """A live model by name: the tenant's own or a platform one (names never collide)."""
    rows = _rows(conn, f"""SELECT {_MODEL_COLUMNS} FROM models
                            WHERE lower(name) = lower(%s) AND deleted_at IS NULL
                              AND (tenant_id IS NULL OR tenant_id = %s)
                            ORDER BY tenant_id NULLS LAST LIMIT 1""", (name, tenant_id))
    return rows[0] if rows else None


def get_credentials(conn: Connection[Any], tenant_id: uuid.UUID, model_id: uuid.UUID) -> bytes | None:
    row = conn.execute("SELECT credentials FROM models WHERE id = %s AND tenant_id = %s",
                       (model_id, tenant_id)).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None


# Live models a tenant sees (its own and the platform's), optionally by capability and source.
_VISIBLE = """deleted_at IS NULL AND (tenant_id IS NULL OR tenant_id = %(tenant)s)
              AND (%(capability)s::text IS NULL OR spec->'capabilities' ? %(capability)s::text)
              AND (%(source)s::text IS NULL OR source = %(source)s::text)"""


def list_models(conn: Connection[Any], tenant_id: uuid.UUID, capability: str | None, source: str | None,
                page: PageRequest) -> tuple[list[Row], int]:
    order = sql.SQL(", ").join(
        [sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL("DESC" if desc else "ASC")) for col, desc in page.order]
        + [sql.SQL("id ASC")])
    params = {"tenant": tenant_id, "capability": capability, "source": source,
              "limit": page.limit, "offset": page.offset}
    query = sql.SQL(f"""SELECT {_MODEL_COLUMNS}, count(*) OVER () AS total FROM models WHERE {_VISIBLE}
                        ORDER BY {{}} LIMIT %(limit)s OFFSET %(offset)s""").format(order)
    rows = _rows(conn, query, params)
    if rows:
        total = int(rows[0]["total"])
    else:  # a page past the end still reports the total
        found = conn.execute(f"SELECT count(*) FROM models WHERE {_VISIBLE}", params).fetchone()
        total = int(found[0]) if found else 0
    for row in rows:
        row.pop("total", None)
    return rows, total


def insert_tenant_model(conn: Connection[Any], model_id: uuid.UUID, tenant_id: uuid.UUID, name: str,
                        spec: dict[str, Any], credentials: bytes | None) -> Row:
    return _rows(conn, f"""INSERT INTO models (id, tenant_id, name, spec, source, credentials)
                           VALUES (%s, %s, %s, %s, 'tenant', %s) RETURNING {_MODEL_COLUMNS}""",
                 (model_id, tenant_id, name, Jsonb(spec), credentials))[0]


def update_tenant_model(conn: Connection[Any], tenant_id: uuid.UUID, model_id: uuid.UUID, spec: dict[str, Any],
                        credentials: bytes | None, replace_credentials: bool, expected_version: int) -> Row | None:
    """None when the row changed (version) or went away since it was read."""
    rows = _rows(conn, f"""UPDATE models SET spec = %s,
                                  credentials = CASE WHEN %s THEN %s ELSE credentials END,
                                  updated_at = now(), version = version + 1
                           WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL AND version = %s
                           RETURNING {_MODEL_COLUMNS}""",
                 (Jsonb(spec), replace_credentials, credentials, tenant_id, model_id, expected_version))
    return rows[0] if rows else None


def soft_delete_tenant_model(conn: Connection[Any], tenant_id: uuid.UUID, model_id: uuid.UUID) -> None:
    conn.execute("""UPDATE models SET deleted_at = now(), updated_at = now(), version = version + 1
                    WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (tenant_id, model_id))


def platform_name_taken(conn: Connection[Any], name: str) -> bool:
    row = conn.execute("""SELECT 1 FROM models WHERE tenant_id IS NULL AND deleted_at IS NULL
                          AND lower(name) = lower(%s)""", (name,)).fetchone()
    return row is not None


# Defaults -------------------------------------------------------------------------------
DEFAULT_FIELDS = ("chat_model", "chat_fallback_model", "embedding_model", "rerank_model")


def get_defaults(conn: Connection[Any], tenant_id: uuid.UUID) -> Row | None:
    rows = _rows(conn, """SELECT chat_model, chat_fallback_model, embedding_model, rerank_model, updated_at, version
                          FROM tenant_model_defaults WHERE tenant_id = %s""", (tenant_id,))
    return rows[0] if rows else None


def upsert_defaults(conn: Connection[Any], tenant_id: uuid.UUID, values: dict[str, str | None],
                    expected_version: int | None) -> Row | None:
    rows = _rows(conn, """INSERT INTO tenant_model_defaults
                              (tenant_id, chat_model, chat_fallback_model, embedding_model, rerank_model)
                          VALUES (%(t)s, %(chat_model)s, %(chat_fallback_model)s, %(embedding_model)s, %(rerank_model)s)
                          ON CONFLICT (tenant_id) DO UPDATE SET
                              chat_model = excluded.chat_model, chat_fallback_model = excluded.chat_fallback_model,
                              embedding_model = excluded.embedding_model, rerank_model = excluded.rerank_model,
                              updated_at = now(), version = tenant_model_defaults.version + 1
                          WHERE %(v)s::int IS NULL OR tenant_model_defaults.version = %(v)s::int
                          RETURNING chat_model, chat_fallback_model, embedding_model, rerank_model,
                                    updated_at, version""",
                 {"t": tenant_id, "v": expected_version, **values})
    return rows[0] if rows else None


# Usage ----------------------------------------------------------------------------------
def insert_usage(conn: Connection[Any], *, record_id: uuid.UUID, tenant_id: uuid.UUID, model_name: str,
                 call_type: str, input_tokens: int, output_tokens: int, estimated: bool, latency_ms: int,
                 cost: Any, outcome: str) -> None:
    conn.execute("""INSERT INTO usage_records (id, tenant_id, model_name, call_type, input_tokens, output_tokens,
                                               estimated, latency_ms, cost, outcome)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                 (record_id, tenant_id, model_name, call_type, input_tokens, output_tokens, estimated, latency_ms,
                  cost, outcome))


def usage_aggregate(conn: Connection[Any], tenant_id: uuid.UUID, start: datetime, end: datetime,
                    group_by: str) -> list[Row]:
    key = {"model": sql.SQL("model_name"),
           "day": sql.SQL("to_char(date_trunc('day', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')")}[group_by]
    query = sql.SQL("""SELECT {key} AS key, count(*) AS calls,
                              count(*) FILTER (WHERE outcome <> 'ok') AS failed_calls,
                              coalesce(sum(input_tokens), 0) AS input_tokens,
                              coalesce(sum(output_tokens), 0) AS output_tokens,
                              bool_or(estimated) AS includes_estimates,
                              coalesce(sum(cost), 0) AS cost,
                              coalesce(round(avg(latency_ms)), 0) AS avg_latency_ms
                       FROM usage_records
                       WHERE tenant_id = %s AND created_at >= %s AND created_at < %s
                       GROUP BY 1 ORDER BY 1""").format(key=key)
    return _rows(conn, query, (tenant_id, start, end))


def tokens_since(conn: Connection[Any], tenant_id: uuid.UUID, start: datetime) -> int:
    row = conn.execute("""SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM usage_records
                          WHERE tenant_id = %s AND created_at >= %s""", (tenant_id, start)).fetchone()
    return int(row[0]) if row else 0


# Quotas ---------------------------------------------------------------------------------
def get_quota(conn: Connection[Any], tenant_id: uuid.UUID) -> Row | None:
    rows = _rows(conn, """SELECT monthly_tokens_soft, monthly_tokens_hard, updated_at FROM tenant_quotas
                          WHERE tenant_id = %s""", (tenant_id,))
    return rows[0] if rows else None


def upsert_quota(conn: Connection[Any], tenant_id: uuid.UUID, soft: int | None, hard: int | None) -> Row:
    return _rows(conn, """INSERT INTO tenant_quotas (tenant_id, monthly_tokens_soft, monthly_tokens_hard)
                          VALUES (%s, %s, %s)
                          ON CONFLICT (tenant_id) DO UPDATE SET monthly_tokens_soft = excluded.monthly_tokens_soft,
                              monthly_tokens_hard = excluded.monthly_tokens_hard, updated_at = now()
                          RETURNING monthly_tokens_soft, monthly_tokens_hard, updated_at""",
                 (tenant_id, soft, hard))[0]
