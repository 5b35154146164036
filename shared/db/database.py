"""PostgreSQL access: the ``Database`` port and its psycopg 3 adapter.

In Lambda a container holds one connection (RDS Proxy pins sessions that set
per-transaction tenant settings, so a pool would buy nothing); the local runtime,
which serves many threads from one process, uses a pool. Every transaction names its
tenant, which row-level security enforces (``app.tenant_id``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

APP_ROLE = "stratus_app"
logger = logging.getLogger(__name__)


class Database(Protocol):
    def transaction(self, tenant_id: uuid.UUID | None = None) -> Any:
        """Context manager yielding a psycopg connection inside one transaction whose
        tenant is ``tenant_id`` (None: no tenant rows are visible)."""
        ...

    def close(self) -> None: ...


class NestedTransaction(RuntimeError):
    """A transaction was opened while this thread already held one. In Lambda the container
    has one connection, so the inner call would wait for the outer one for ever; locally a
    pool would hide the bug. Both refuse it."""


_held = threading.local()


@contextmanager
def _not_nested() -> Iterator[None]:
    if getattr(_held, "depth", 0):
        raise NestedTransaction("a database transaction is already open in this thread; "
                                "finish it before calling code that opens another")
    _held.depth = 1
    try:
        yield
    finally:
        _held.depth = 0


def _begin(conn: psycopg.Connection[Any], tenant_id: uuid.UUID | None) -> None:
    # set_config(..., true) is transaction-local: the setting never leaks to the next
    # transaction on the same (possibly proxied) connection.
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id) if tenant_id else "",))


class SingleConnectionDatabase:
    """One lazily opened connection per container, reopened if it broke."""

    def __init__(self, conninfo: str, *, connect_timeout_s: int = 5) -> None:
        self._conninfo = conninfo
        self._connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            # prepare_threshold=None: RDS Proxy (transaction-level reuse) and prepared
            # statements do not mix.
            conn = psycopg.connect(self._conninfo, prepare_threshold=None,
                                   connect_timeout=self._connect_timeout_s)
            self._conn = conn
        return conn

    @contextmanager
    def transaction(self, tenant_id: uuid.UUID | None = None) -> Iterator[psycopg.Connection[Any]]:
        """One transaction. A kept connection found broken when the transaction starts (RDS
        Proxy dropped an idle client, a failover, a terminated backend) is replaced and the start
        tried once more: nothing of the caller's ran yet. Once the caller has the connection, a
        failure is the caller's: never replayed, a COMMIT that failed may have committed."""
        import psycopg

        with _not_nested(), self._lock:
            reused = self._conn is not None and not self._conn.closed and not self._conn.broken
            conn = self._connection()
            started = False
            try:
                with conn.transaction():
                    _begin(conn, tenant_id)
                    started = True
                    yield conn
                return
            except psycopg.OperationalError:
                if started or not reused or not (conn.broken or conn.closed):
                    raise
                logger.warning("database connection broken at transaction start; reconnecting once")
            self.close()
            conn = self._connection()
            with conn.transaction():
                _begin(conn, tenant_id)
                yield conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PooledDatabase:
    """A connection pool, for the local runtime's threads."""

    def __init__(self, conninfo: str, *, max_size: int = 16, connect_timeout_s: int = 5) -> None:
        from psycopg_pool import ConnectionPool

        self._pool: ConnectionPool[Any] = ConnectionPool(
            conninfo, min_size=1, max_size=max_size, open=True, timeout=connect_timeout_s,
            kwargs={"prepare_threshold": None},
        )

    @contextmanager
    def transaction(self, tenant_id: uuid.UUID | None = None) -> Iterator[psycopg.Connection[Any]]:
        with _not_nested(), self._pool.connection() as conn, conn.transaction():
            _begin(conn, tenant_id)
            yield conn

    def close(self) -> None:
        self._pool.close()


_default: Database | None = None
_default_lock = threading.Lock()


def get_database() -> Database:
    """The container's database, created on first use from the settings."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = _from_settings()
    return _default


def set_database(db: Database | None) -> None:
    """Install a database (the local runtime and tests hand in their own)."""
    global _default
    _default = db


def _from_settings() -> Database:
    from shared.config import get_settings
    from shared.errors import Unavailable

    settings = get_settings()
    conninfo = app_conninfo()
    if conninfo is None:
        raise Unavailable("Database is not configured (set DATABASE_URL)", code="sys_database_unconfigured")
    if settings.stratus_runtime == "local":
        return PooledDatabase(conninfo, max_size=settings.db_pool_max,
                              connect_timeout_s=settings.db_connect_timeout_s)
    return SingleConnectionDatabase(conninfo, connect_timeout_s=settings.db_connect_timeout_s)


def app_conninfo() -> str | None:
    """The application role's connection string: DATABASE_URL locally; in AWS built from
    the secret the Parameters and Secrets Lambda Extension serves."""
    from shared.config import get_settings

    settings = get_settings()
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    if settings.database_secret_arn and settings.database_host:
        from shared.aws.secrets import get_secret_json

        secret = get_secret_json(settings.database_secret_arn)
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=settings.database_host, port=int(secret.get("port", 5432)),
                             dbname=settings.database_name, user=secret["username"],
                             password=secret["password"], sslmode="require")
    return None
