"""Versioned SQL migrations, applied in order and recorded in ``schema_migrations``.

Run with the owner's connection: at start-up locally, by the migration function in AWS.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

logger = logging.getLogger(__name__)

# Serialises concurrent migrators (two local runtimes, a deploy racing a retry).
_LOCK_KEY = 0x5752A705
# Where the migrations sit in the repository and in the function's code asset: part of the
# hash, so infra (which hashes the files at synth) and the function (which hashes its own
# copy) compute the same value.
MIGRATIONS_PATH = "shared/db/migrations"
# A migration is started only with at least this much of the invocation left; with less,
# the next invocation (the custom resource's next isComplete poll) takes it.
MIN_WINDOW_S = 60.0
# Kept back from a migration's statement timeout, for the commit and the answer.
_MARGIN_S = 15.0


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("shared.db.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(int(version), rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions: {versions}")
    return found


def migrations_hash() -> str:
    """SHA-256 of the bundled migration files (relative path, NUL, content, NUL; sorted by
    name): the migration custom resource's ``MigrationsHash`` (infra/packaging.py)."""
    digest = hashlib.sha256()
    entries = sorted((e for e in resources.files("shared.db.migrations").iterdir() if e.name.endswith(".sql")),
                     key=lambda e: e.name)
    for entry in entries:
        digest.update(f"{MIGRATIONS_PATH}/{entry.name}".encode() + b"\0")
        digest.update(entry.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass
class MigrationProgress:
    """What one call applied, and what it left for the next (out of time)."""

    applied: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.pending


def ensure_app_role(conn: Any, password: str | None) -> None:
    """Create the application role (non-owner, no BYPASSRLS) if missing."""
    from psycopg import sql

    from shared.db.database import APP_ROLE

    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
    if not exists:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
                     .format(sql.Identifier(APP_ROLE)))
    if password:
        conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}")
                     .format(sql.Identifier(APP_ROLE), sql.Literal(password)))


def install_app_password(admin_conninfo: str, password: str) -> None:
    """Set the application role's password (creating the role if missing)."""
    import psycopg

    with psycopg.connect(admin_conninfo, autocommit=True, prepare_threshold=None) as conn:
        ensure_app_role(conn, password)


def apply_migrations(admin_conninfo: str, *, app_password: str | None = None) -> list[int]:
    """Apply pending migrations; returns the versions applied. Idempotent."""
    return apply_migrations_until(admin_conninfo, app_password=app_password, deadline=None).applied


def apply_migrations_until(admin_conninfo: str, *, app_password: str | None,
                           deadline: float | None) -> MigrationProgress:
    """Apply pending migrations in order until ``deadline`` (``time.monotonic()``) is near:
    each one starts only with MIN_WINDOW_S left and runs under a statement timeout that ends
    before the deadline, so it commits whole or rolls back cleanly, never half-killed with
    its invocation. The rest is left pending for the next call. Idempotent."""
    import psycopg

    migrations = load_migrations()
    progress = MigrationProgress()
    applied_now = progress.applied
    with psycopg.connect(admin_conninfo, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            ensure_app_role(conn, app_password)
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                                version integer PRIMARY KEY, name text NOT NULL,
                                checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
            recorded = {row[0]: row[1] for row in
                        conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()}
            for migration in migrations:
                if migration.version in recorded:
                    if recorded[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version} ({migration.name}) changed after it was applied")
                    continue
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and (left < MIN_WINDOW_S or progress.pending):
                    progress.pending.append(migration.version)
                    continue
                with conn.transaction():
                    if left is not None:
                        # SET LOCAL: the timeout ends with this migration's transaction.
                        conn.execute("SELECT set_config('statement_timeout', %s, true)",
                                     (f"{int((left - _MARGIN_S) * 1000)}ms",))
                    try:
                        conn.execute(migration.sql.encode())
                    except psycopg.errors.QueryCanceled as exc:
                        raise MigrationError(
                            f"migration {migration.version} ({migration.name}) did not finish within one "
                            f"invocation ({left:.0f} s left): split it into smaller migrations") from exc
                    conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                 (migration.version, migration.name, migration.checksum))
                logger.info("applied migration %s %s", migration.version, migration.name,
                            extra={"version": migration.version, "migration": migration.name})
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return progress
