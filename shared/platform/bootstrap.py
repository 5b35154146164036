"""Schema and platform admin token set-up: run by the migration function in AWS and at
start-up by the local runtime."""

from __future__ import annotations

from typing import Any

from shared.auth import tokens
from shared.db.migrate import apply_migrations
from shared.ids import new_id

ADMIN_TOKEN_NAME = "platform-admin"  # noqa: S105 - the token's name, not a secret


def install_admin_token(admin_conninfo: str, token: str) -> None:
    """Make ``token`` the platform admin token (its hash replaces any earlier one)."""
    import psycopg

    if not tokens.looks_like_token(token):
        raise ValueError("the platform admin token must look like pat_<secret> (16-256 characters)")
    with psycopg.connect(admin_conninfo, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT ensure_platform_admin_token(%s, %s, %s)",
                     (new_id(), ADMIN_TOKEN_NAME, tokens.hash_token(token)))


def refresh_model_catalog(admin_conninfo: str) -> dict[str, Any]:
    """Load the shipped model catalog (what the hourly schedule and the admin endpoint do),
    so a fresh deployment or `make dev` has its models at once."""
    import psycopg
    from psycopg.rows import dict_row

    from shared.models import repository
    from shared.models.service import load_catalog_files

    with psycopg.connect(admin_conninfo, autocommit=True, prepare_threshold=None, row_factory=dict_row) as conn:
        return repository.refresh_catalog(conn, load_catalog_files())


def bootstrap(admin_conninfo: str, *, app_password: str | None, admin_token: str | None) -> dict[str, Any]:
    applied = apply_migrations(admin_conninfo, app_password=app_password)
    if admin_token:
        install_admin_token(admin_conninfo, admin_token)
    catalog = refresh_model_catalog(admin_conninfo)
    return {"applied_migrations": applied, "model_count": catalog["model_count"]}
