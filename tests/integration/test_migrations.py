"""Migrations are applied in order, recorded, idempotent, and refuse edited history;
the start-up reconciler fails work left in flight."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra.local.postgres import start_embedded_postgres
from shared.db import migrate
from shared.db.migrate import Migration, MigrationError, apply_migrations, load_migrations
from shared.platform.reconcile import reconcile_interrupted_work


def test_migrations_are_ordered_and_recorded(admin_sql: Callable[..., list[tuple[Any, ...]]], pg: Any) -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    recorded = [row[0] for row in admin_sql("SELECT version FROM schema_migrations ORDER BY version")]
    assert recorded == versions
    assert apply_migrations(pg.admin_url) == []  # idempotent


def test_edited_migration_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_embedded_postgres(tmp_path / "pg", database="edited")
    try:
        assert apply_migrations(server.admin_url) == [m.version for m in load_migrations()]
        original = load_migrations()
        edited = [Migration(m.version, m.name, m.sql + "\n-- edited") if m.version == 1 else m for m in original]
        monkeypatch.setattr(migrate, "load_migrations", lambda: edited)
        with pytest.raises(MigrationError, match="changed after it was applied"):
            apply_migrations(server.admin_url)
    finally:
        server.stop()


def test_reconciler_fails_work_in_flight(admin_sql: Callable[..., list[tuple[Any, ...]]], pg: Any) -> None:
    # A capability registers its table; here a table made for the test stands in for one.
    admin_sql("""CREATE TABLE IF NOT EXISTS reconcile_probe (id int PRIMARY KEY, status text, error text)""")
    admin_sql("TRUNCATE reconcile_probe")
    admin_sql("""INSERT INTO reconcile_probe VALUES (1, 'running', NULL), (2, 'queued', NULL),
                                                   (3, 'succeeded', NULL)""")
    admin_sql("""INSERT INTO reconcile_targets
                 VALUES ('reconcile_probe', 'status', '{running,queued}', 'failed', 'error') ON CONFLICT DO NOTHING""")
    try:
        counts = reconcile_interrupted_work(pg.admin_url)
        assert counts["reconcile_probe"] == 2
        rows = admin_sql("SELECT id, status, error FROM reconcile_probe ORDER BY id")
        assert rows == [(1, "failed", "local runtime restarted"), (2, "failed", "local runtime restarted"),
                        (3, "succeeded", None)]
        assert reconcile_interrupted_work(pg.admin_url)["reconcile_probe"] == 0
    finally:
        admin_sql("DELETE FROM reconcile_targets WHERE table_name = 'reconcile_probe'")
        admin_sql("DROP TABLE reconcile_probe")


def test_app_role_cannot_run_the_reconciler(pg: Any) -> None:
    with psycopg.connect(pg.app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM reconcile_interrupted_work('x')")
