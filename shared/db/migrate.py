"""Versioned SQL migrations, applied in order and recorded in ``schema_migrations``.

Run with the owner's connection: at start-up locally, by the migration function in AWS.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

logger = logging.getLogger(__name__)

# Serialises concurrent migrators (two local runtimes, a deploy racing a retry).
_LOCK_KEY = 0x5752A705


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


def apply_migrations(admin_conninfo: str, *, app_password: str | None = None) -> list[int]:
    """Apply pending migrations; returns the versions applied. Idempotent."""
    import psycopg

    migrations = load_migrations()
    applied_now: list[int] = []
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
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                 (migration.version, migration.name, migration.checksum))
                logger.info("applied migration %s %s", migration.version, migration.name,
                            extra={"version": migration.version, "migration": migration.name})
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
