"""A container's kept connection found broken (RDS Proxy dropped the idle client, a failover) is
replaced once when a transaction starts, never once the caller has run (docs/adr/0047), against a
real PostgreSQL whose backend is killed with pg_terminate_backend."""

from __future__ import annotations

import psycopg
import pytest

from infra.local.postgres import EmbeddedPostgres
from shared.db.database import SingleConnectionDatabase


def _backend_pid(db: SingleConnectionDatabase) -> int:
    with db.transaction() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def _terminate(pg: EmbeddedPostgres, pid: int) -> None:
    with psycopg.connect(pg.admin_url, autocommit=True) as admin:
        row = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert row is not None and row[0] is True


def test_a_connection_killed_between_invocations_is_replaced_once(pg: EmbeddedPostgres) -> None:
    db = SingleConnectionDatabase(pg.app_url)
    try:
        first = _backend_pid(db)
        _terminate(pg, first)
        # The next transaction's start finds it broken, reconnects and goes on: the caller sees nothing.
        second = _backend_pid(db)
        assert second != first
        assert _backend_pid(db) == second, "the new connection is kept"
    finally:
        db.close()


def test_a_failure_after_the_caller_started_is_never_replayed(pg: EmbeddedPostgres) -> None:
    db = SingleConnectionDatabase(pg.app_url)
    runs: list[int] = []
    try:
        pid = _backend_pid(db)
        with pytest.raises(psycopg.OperationalError), db.transaction() as conn:
            runs.append(1)
            conn.execute("SELECT 1")
            _terminate(pg, pid)
            conn.execute("SELECT 2")
        assert runs == [1], "the caller's work ran once"
        # The broken connection is replaced by the next transaction.
        assert _backend_pid(db) != pid
    finally:
        db.close()


def test_a_fresh_connection_that_fails_fails(pg: EmbeddedPostgres) -> None:
    # No kept connection to blame: the connect error is the answer, at once.
    with psycopg.connect(pg.admin_url, autocommit=True) as admin:
        admin.execute("ALTER ROLE stratus_app NOLOGIN")
    try:
        db = SingleConnectionDatabase(pg.app_url, connect_timeout_s=2)
        with pytest.raises(psycopg.OperationalError, match="not permitted to log in"), db.transaction():
            pass
    finally:
        with psycopg.connect(pg.admin_url, autocommit=True) as admin:
            admin.execute("ALTER ROLE stratus_app LOGIN")
