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


def test_definer_functions_work_when_the_owner_is_not_a_superuser(tmp_path: Path) -> None:
    """As on Aurora, where the master user neither is a superuser nor bypasses RLS."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from shared.auth.token_state import TokenStateStore
    from shared.cache.memory import MemoryKeyValueStore
    from shared.db.database import SingleConnectionDatabase
    from shared.platform.bootstrap import install_admin_token, refresh_model_catalog
    from shared.tenancy.models import CreateTenant
    from shared.tenancy.service import TenancyService

    server = start_embedded_postgres(tmp_path / "pg", database="postgres")
    try:
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute("CREATE ROLE plain_owner LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS")
            conn.execute("CREATE DATABASE aurora_like OWNER plain_owner")
        params = conninfo_to_dict(server.admin_url)
        # Aurora's master user (rds_superuser) may create pgvector; a plain owner may not.
        with psycopg.connect(make_conninfo("", **{**params, "dbname": "aurora_like"}), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        owner_url = make_conninfo("", **{**params, "dbname": "aurora_like", "user": "plain_owner"})
        app_url = make_conninfo("", **{**params, "dbname": "aurora_like", "user": "stratus_app"})
        apply_migrations(owner_url)
        install_admin_token(owner_url, "pat_" + "o" * 40)
        assert refresh_model_catalog(owner_url)["model_count"] == 8
        db = SingleConnectionDatabase(app_url)
        try:
            service = TenancyService(db, TokenStateStore(MemoryKeyValueStore(), 300))
            created = service.create_tenant(CreateTenant(name="aurora"))
            assert service.resolve_token(created.owner_token).tenant_id == created.tenant.id
            assert service.resolve_token("pat_" + "o" * 40).is_platform_admin
            with db.transaction(created.tenant.id) as conn:
                assert conn.execute("SELECT count(*) FROM models WHERE tenant_id IS NULL").fetchone() == (8,)
                conn.execute("UPDATE members SET deleted_at = now() - interval '90 days'")
            with db.transaction() as conn:
                purged = conn.execute("SELECT purge_soft_deleted('members', now() - interval '30 days', 100)")
                assert purged.fetchone() == (1,)
        finally:
            db.close()
    finally:
        server.stop()


def test_migrations_spread_over_invocations(tmp_path: Path) -> None:
    """The migration custom resource's polls: a call with too little of its invocation left
    starts nothing and reports the rest pending; the next call applies them, in order."""
    import time

    from shared.db.migrate import MIN_WINDOW_S, apply_migrations_until

    server = start_embedded_postgres(tmp_path / "pg", database="polls")
    try:
        versions = [m.version for m in load_migrations()]
        short = apply_migrations_until(server.admin_url, app_password=None,
                                       deadline=time.monotonic() + MIN_WINDOW_S - 5)
        assert short.applied == [] and short.pending == versions and not short.complete
        full = apply_migrations_until(server.admin_url, app_password=None, deadline=time.monotonic() + 600)
        assert full.applied == versions and full.complete
        again = apply_migrations_until(server.admin_url, app_password=None, deadline=time.monotonic() + 600)
        assert again.applied == [] and again.complete
    finally:
        server.stop()


def test_the_function_hashes_its_migrations_as_infra_does() -> None:
    """A rollback is recognised by comparing the property (infra's hash at synth) with the
    function's own hash of its bundled files: they must be computed alike."""
    from infra.packaging import MIGRATIONS_DIR, _digest
    from shared.db.migrate import migrations_hash

    assert migrations_hash() == _digest(sorted(MIGRATIONS_DIR.glob("*.sql")))
