"""Session-wide test set-up: an embedded PostgreSQL with the migrations applied, the
settings the functions read, and helpers to create tenants. Real services, no patching of
internals: tests hand our own ports real local services or in-memory adapters."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.postgres import EmbeddedPostgres, start_embedded_postgres
from shared.cache.factory import reset_cache_adapters
from shared.config import reset_settings
from shared.db.database import PooledDatabase, set_database
from shared.platform.bootstrap import bootstrap

# Settings every test process runs with; no AWS account is ever reached.
_BASE_ENV = {
    "STRATUS_RUNTIME": "local",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LOG_LEVEL": "WARNING",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
    # The fake model providers listen on loopback: tenant models pointing there pass the
    # egress policy only because this lists it (tests of the policy clear it).
    "STRATUS_EGRESS_ALLOW": "127.0.0.0/8,::1,localhost",
}
for _key, _value in _BASE_ENV.items():
    os.environ[_key] = _value
# Functions under test use the in-process cache adapters unless a test hands them Redis;
# a REDIS_URL given to the test run is where the Redis contract tests go instead of a
# server the set-up starts itself.
# Tests never reach a real model provider, whatever keys the developer's shell holds.
for _key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL"):
    os.environ.pop(_key, None)
if os.environ.get("REDIS_URL"):
    os.environ["STRATUS_TEST_REDIS_URL"] = os.environ.pop("REDIS_URL")


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = start_embedded_postgres(tmp_path_factory.mktemp("pg") / "data")
    bootstrap(server.admin_url, app_password=None, admin_token=None)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def admin_token(pg: EmbeddedPostgres) -> str:
    from shared.platform.bootstrap import install_admin_token

    token = "pat_" + secrets.token_urlsafe(32)
    install_admin_token(pg.admin_url, token)
    return token


@pytest.fixture(scope="session")
def app_env(pg: EmbeddedPostgres) -> Iterator[None]:
    """The functions' settings pointed at the embedded database (app role)."""
    os.environ["DATABASE_URL"] = pg.app_url
    reset_settings()
    reset_cache_adapters()
    db = PooledDatabase(pg.app_url, max_size=8)
    set_database(db)
    yield
    set_database(None)
    db.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
