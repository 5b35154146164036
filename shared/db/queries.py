"""Query helpers every repository shares: dict rows, one row, a page with its total, and the
SET list of a partial update."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.db.paging import PageRequest

Row = dict[str, Any]


def rows(conn: Connection[Any], query: Any, params: Any = ()) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else []


def one(conn: Connection[Any], query: Any, params: Any = ()) -> Row | None:
    found = rows(conn, query, params)
    return found[0] if found else None


def order_by(page: PageRequest) -> sql.Composable:
    """The page's sort (fields already checked against the resource's), then id: stable pages."""
    return sql.SQL(", ").join(
        [sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL("DESC" if desc else "ASC")) for col, desc in page.order]
        + [sql.SQL("id ASC")])


def page_of(conn: Connection[Any], table: str, select: str, where: str, params: dict[str, Any],
            page: PageRequest) -> tuple[list[Row], int]:
    """One page of ``SELECT select FROM table WHERE where`` and the total. The select list is
    wrapped so sort keys may name computed columns; a page past the end still reports the total."""
    query = sql.SQL(f"SELECT *, count(*) OVER () AS total FROM (SELECT {select} FROM {table} WHERE {where}) AS t "
                    "ORDER BY {} LIMIT %(limit)s OFFSET %(offset)s").format(order_by(page))
    found = rows(conn, query, {**params, "limit": page.limit, "offset": page.offset})
    if found:
        total = int(found[0]["total"])
    else:
        counted = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()
        total = int(counted[0]) if counted else 0
    for row in found:
        row.pop("total", None)
    return found, total


def assignments(values: Mapping[str, Any]) -> tuple[sql.Composable, dict[str, Any]]:
    """``col = %(col)s, …`` for a partial update and its parameters (dicts as JSONB)."""
    clause = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in values)
    return clause, {name: Jsonb(v) if isinstance(v, dict) else v for name, v in values.items()}
