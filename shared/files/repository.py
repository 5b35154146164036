"""SQL for files. Every query names the tenant; row-level security checks it again."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import Connection

from shared.db.queries import Row, one

Conn = Connection[Any]

_COLUMNS = "id, tenant_id, name, content_type, size, sha256, s3_key, created_by, api_key_id, created_at"


def insert_file(conn: Conn, *, file_id: uuid.UUID, tenant_id: uuid.UUID, name: str, content_type: str, size: int,
                sha256: str, s3_key: str, created_by: uuid.UUID | None, api_key_id: uuid.UUID | None) -> Row:
    row = one(conn, f"""INSERT INTO files (id, tenant_id, name, content_type, size, sha256, s3_key, created_by,
                                          api_key_id)
                        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",
              (file_id, tenant_id, name, content_type, size, sha256, s3_key, created_by, api_key_id))
    assert row is not None
    return row


def get_file(conn: Conn, tenant_id: uuid.UUID, file_id: uuid.UUID) -> Row | None:
    return one(conn, f"SELECT {_COLUMNS} FROM files WHERE id = %s AND tenant_id = %s", (file_id, tenant_id))
