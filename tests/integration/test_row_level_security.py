"""Row-level security: the application role sees only the current tenant's rows even when
a query forgets its tenant filter, and cannot reach what it must not."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from shared.db.database import SingleConnectionDatabase


@pytest.fixture
def app_db(pg: Any) -> SingleConnectionDatabase:
    db = SingleConnectionDatabase(pg.app_url)
    yield db  # type: ignore[misc]
    db.close()


def test_query_without_tenant_filter_returns_only_current_tenant(
        app_db: SingleConnectionDatabase, new_tenant: Callable[..., Any]) -> None:
    a, b = new_tenant(), new_tenant()
    a_id = uuid.UUID(a["tenant"]["id"])
    with app_db.transaction(a_id) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("stratus_app",)
        tenants = {row[0] for row in conn.execute("SELECT id FROM tenants").fetchall()}
        members = {row[0] for row in conn.execute("SELECT tenant_id FROM members").fetchall()}
        keys = {row[0] for row in conn.execute("SELECT tenant_id FROM api_keys").fetchall()}
        emails = {row[0] for row in conn.execute("SELECT email FROM users").fetchall()}
    assert tenants == {a_id} and members == {a_id} and keys == {a_id}
    assert emails == {a["owner"]["email"]}
    assert b["owner"]["email"] not in emails


def test_no_tenant_set_sees_nothing(app_db: SingleConnectionDatabase, new_tenant: Callable[..., Any]) -> None:
    new_tenant()
    with app_db.transaction(None) as conn:
        for table in ("tenants", "members", "api_keys", "users"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_tenant_setting_does_not_leak_to_next_transaction(app_db: SingleConnectionDatabase,
                                                          new_tenant: Callable[..., Any]) -> None:
    a_id = uuid.UUID(new_tenant()["tenant"]["id"])
    with app_db.transaction(a_id) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (1,)
    with app_db.transaction(None) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (0,)


def test_cannot_write_into_another_tenant(app_db: SingleConnectionDatabase, new_tenant: Callable[..., Any]) -> None:
    a, b = new_tenant(), new_tenant()
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_db.transaction(uuid.UUID(a["tenant"]["id"])) as conn:
        conn.execute("INSERT INTO members (id, tenant_id, user_id, role) VALUES (%s, %s, %s, 'owner')",
                     (uuid.uuid4(), b["tenant"]["id"], a["owner"]["user_id"]))
    with app_db.transaction(uuid.UUID(a["tenant"]["id"])) as conn:
        updated = conn.execute("UPDATE members SET role = 'viewer' WHERE tenant_id = %s",
                               (b["tenant"]["id"],)).rowcount
    assert updated == 0


def test_app_role_cannot_read_admin_tokens_or_bypass(app_db: SingleConnectionDatabase) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_db.transaction(None) as conn:
        conn.execute("SELECT * FROM platform_admin_tokens")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_db.transaction(None) as conn:
        conn.execute("SELECT ensure_platform_admin_token(gen_random_uuid(), 'x', '\\x00')")
    with app_db.transaction(None) as conn:
        row = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row == (False, False)


def test_every_tenant_table_forces_row_level_security(admin_sql: Callable[..., list[tuple[Any, ...]]]) -> None:
    tables = admin_sql("""SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
                          JOIN information_schema.columns col ON col.table_name = c.relname
                                                              AND col.column_name = 'tenant_id'
                          WHERE c.relkind = 'r' AND col.table_schema = 'public'""")
    assert tables, "no tenant-owned tables found"
    assert all(rls and forced for _, rls, forced in tables), tables


def test_tenants_read_but_never_write_catalog_models(app_db: SingleConnectionDatabase,
                                                     new_tenant: Callable[..., Any],
                                                     pg: Any) -> None:
    from shared.platform.bootstrap import refresh_model_catalog

    refresh_model_catalog(pg.admin_url)
    tenant_id = uuid.UUID(new_tenant()["tenant"]["id"])
    with app_db.transaction(tenant_id) as conn:
        visible = conn.execute("SELECT count(*) FROM models WHERE tenant_id IS NULL").fetchone()
        deleted = conn.execute("DELETE FROM models WHERE tenant_id IS NULL").rowcount
        updated = conn.execute("UPDATE models SET name = 'x' WHERE tenant_id IS NULL").rowcount
    assert visible is not None and visible[0] > 0
    assert (deleted, updated) == (0, 0)


def test_a_nested_transaction_is_refused_not_deadlocked(app_db: SingleConnectionDatabase, pg: Any) -> None:
    """One connection per Lambda container: an inner transaction would wait for the outer one
    for ever. Both database adapters refuse it at once (the pool would otherwise hide it)."""
    from shared.db.database import NestedTransaction, PooledDatabase

    pooled = PooledDatabase(pg.app_url, max_size=2)
    try:
        for db in (app_db, pooled):
            with db.transaction() as conn, pytest.raises(NestedTransaction):
                conn.execute("SELECT 1")
                with db.transaction():
                    pass
            with db.transaction() as conn:  # the outer one ended cleanly: usable again
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pooled.close()
